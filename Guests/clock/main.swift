// The clock guest: reads the time of day Tern publishes in shared_info (from the board's RTC at boot)
// and, with set=<seconds>, sets it as a control domain does (platform_op XENPF_settime64). Without
// set it waits for a change another domain makes, up to wait=<ms>, so the publication to every domain
// can be seen. Output: "clock: ..." lines, each number in decimal.
import GuestKit
import GuestKitAsm
import TernCore

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let shared: UInt64
    switch Xen.mapSharedInfo() {
    case .success(let base): shared = base
    case .failure(let e):
        print("clock: add_to_physmap(shared_info) = \(e.code)")
        Xen.shutdown(.crash)
    }
    let start = Xen.wallClock(sharedInfo: shared)
    print("clock: wall clock at start \(start.seconds) s \(start.nanoseconds) ns")

    let target = args.integer("set", default: 0)
    if target > 0 {
        Interrupts.start()
        Timer.sleep(milliseconds: UInt64(args.integer("delay", default: 0)))
        // xen_platform_op { cmd, interface_version, settime64 { secs, nsecs, mbz, system_time } }
        var op: SetTime64 =
            (PlatformOpCommand.settime64.rawValue, platformOpInterfaceVersion, UInt64(target), 0, 0, 0)
        op.1 = 0x0200_0000
        print("clock: settime64 with interface version 0x2000000 = \(platformOp(&op))")
        op.1 = platformOpInterfaceVersion
        op.4 = 1
        print("clock: settime64 with mbz 1 = \(platformOp(&op))")
        op.4 = 0
        // system_time 0: the wall time when our clock read zero is `target` exactly.
        print("clock: settime64 = \(platformOp(&op))")
        let now = Xen.wallClock(sharedInfo: shared)
        print("clock: wall clock now \(now.seconds) s \(now.nanoseconds) ns")
    } else {
        var op: SetTime64 =
            (PlatformOpCommand.settime64.rawValue, platformOpInterfaceVersion, 1, 0, 0, 0)
        print("clock: settime64 = \(platformOp(&op))")
        Interrupts.start()
        let waitMs = args.integer("wait", default: 0)
        var waited = 0
        var now = Xen.wallClock(sharedInfo: shared)
        while now.version == start.version && waited < waitMs {
            Timer.sleep(milliseconds: 10)
            waited += 10
            now = Xen.wallClock(sharedInfo: shared)
        }
        print("clock: wall clock now \(now.seconds) s \(now.nanoseconds) ns")
    }
    Xen.shutdown(.poweroff)
}

typealias SetTime64 = (UInt32, UInt32, UInt64, UInt32, UInt32, UInt64)

/// platform_op takes its structure's address as its first argument; there is no command beside it.
func platformOp(_ op: inout SetTime64) -> Int64 {
    withUnsafeMutablePointer(to: &op) { Xen.call(.platform_op, UInt64(UInt(bitPattern: $0))) }
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
