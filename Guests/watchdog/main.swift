// The watchdog guest: arms a watchdog (SCHEDOP_watchdog) with a timeout of timeout=<s> seconds, pokes
// it pokes=<n> times at half that interval, then stops poking and sleeps: the hypervisor must end the
// domain with reason watchdog while it sleeps. On the way it checks the calls' errors.
// Output: "watchdog: ..." lines.
import GuestKit
import GuestKitAsm
import TernCore

/// sched_watchdog { id, timeout }: the new id, 0, or a negative errno.
func watchdog(id: UInt32, timeout: UInt32) -> Int64 {
    var request: (UInt32, UInt32) = (id, timeout)
    return Xen.call(.sched_op, SchedOpCommand.watchdog.rawValue, pointingTo: &request)
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let timeout = UInt32(args.integer("timeout", default: 1))
    Interrupts.start()
    let id = watchdog(id: 0, timeout: timeout)
    print("watchdog: armed id \(id) for \(timeout) s")
    let second = watchdog(id: 0, timeout: 60)
    print("watchdog: second id \(second), a third \(watchdog(id: 0, timeout: 60))")
    print("watchdog: stopping id \(second) = \(watchdog(id: UInt32(truncatingIfNeeded: second), timeout: 0))")
    print("watchdog: poking id 5 = \(watchdog(id: 5, timeout: 1))")
    for i in 1 ... args.integer("pokes", default: 3) {
        Timer.sleep(milliseconds: UInt64(timeout) * 500)
        print("watchdog: poke \(i) = \(watchdog(id: UInt32(truncatingIfNeeded: id), timeout: timeout))")
    }
    print("watchdog: no more pokes; sleeping")
    Timer.sleep(milliseconds: UInt64(timeout) * 5000)
    print("watchdog: still here after \(timeout * 5) s")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
