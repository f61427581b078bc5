// The CPU-bound guest: does fixed units of work for `seconds` of wall time (the architected counter,
// which runs whether or not this domain has the CPU) and reports how many it did. Two of these pinned
// to one CPU measure the scheduler's fairness from the inside.
import GuestKit

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let seconds = UInt64(args.integer("seconds", default: 2))
    let start = Timer.ticks
    let end = start + seconds * Timer.frequency
    var units: UInt64 = 0
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    print("spin: working for \(seconds) s")
    while Timer.ticks < end {
        for _ in 0 ..< 256 {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
        }
        units += 1
    }
    print("spin: work=\(units) check=\(x & 0xFF)")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
