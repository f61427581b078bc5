// The CPU-bound guest: does fixed units of work for `seconds` of wall time (the architected counter,
// which runs whether or not this domain has the CPU) and reports how many it did. Two of these pinned
// to one CPU measure the scheduler's fairness from the inside. With `vcpus=N` in its arguments it keeps
// N vCPUs busy: a load for other domains to share the machine with.
import GuestKit

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let seconds = UInt64(args.integer("seconds", default: 2))
    let start = Timer.ticks
    let end = start + seconds * Timer.frequency
    let helpers = args.integer("vcpus", default: 1) - 1
    if helpers > 0 {
        spinEnd = end
        for i in 1 ... helpers { _ = PSCI.startVCPU(i) }
    }
    print("spin: working for \(seconds) s")
    let (units, x, gap) = work(until: end)
    if helpers > 0 { for i in 1 ... helpers { while PSCI.isOn(i) { Xen.yield() } } }
    print("spin: work=\(units) check=\(x & 0xFF)")
    // The longest time the counter moved between two units of work: how long this vCPU was kept
    // from its CPU at a stretch.
    if args.integer("gaps", default: 0) != 0 { print("spin: longest gap \(gap * 1_000_000 / Timer.frequency) us") }
    Xen.shutdown(.poweroff)
}

nonisolated(unsafe) var spinEnd: UInt64 = 0

func work(until end: UInt64) -> (units: UInt64, check: UInt64, longestGap: UInt64) {
    var units: UInt64 = 0
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    var last = Timer.ticks
    var longest: UInt64 = 0
    while last < end {
        for _ in 0 ..< 256 {
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
        }
        units += 1
        let t = Timer.ticks
        longest = max(longest, t - last)
        last = t
    }
    return (units, x, longest)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    _ = work(until: spinEnd)
    PSCI.stopThisVCPU()
}
