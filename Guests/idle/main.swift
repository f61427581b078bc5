// The idle guest: sleeps on its virtual timer, first waiting in WFI and then in SCHEDOP_block. A
// hypervisor that idles properly wakes it only when the timer fires, so every wait ends exactly once.
// Then it sleeps once more in SCHEDOP_poll with a timeout.
import GuestKit

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let waits = args.integer("waits", default: 5)
    let ms = UInt64(args.integer("ms", default: 200))
    Interrupts.start()
    let start = Timer.milliseconds
    var early = 0
    for _ in 0 ..< waits { early += Timer.sleep(milliseconds: ms, waitingWith: .wfi) }
    for _ in 0 ..< waits { early += Timer.sleep(milliseconds: ms, waitingWith: .block) }
    print("idle: \(2 * waits) waits of \(ms) ms took \(Timer.milliseconds - start) ms, early wakeups=\(early)")
    let pollStart = Timer.milliseconds
    let polled = Xen.poll(until: Timer.nanoseconds + ms * 1_000_000)
    print("idle: poll returned \(polled) after \(Timer.milliseconds - pollStart) ms")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
