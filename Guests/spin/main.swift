// The CPU-bound guest: does fixed units of work for `seconds` of wall time (the architected counter,
// which runs whether or not this domain has the CPU) and reports how many it did. Two of these pinned
// to one CPU measure the scheduler's fairness from the inside. With `vcpus=N` in its arguments it keeps
// N vCPUs busy: a load for other domains to share the machine with.
import GuestKit
import TernCore

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
    var work = Work()
    work.run(until: end)
    if helpers > 0 { for i in 1 ... helpers { while PSCI.isOn(i) { Xen.yield() } } }
    print("spin: work=\(work.units) check=\(work.state & 0xFF)")
    if args.integer("gaps", default: 0) != 0 { print("spin: longest gap \(work.longestGap * 1_000_000 / Timer.frequency) us") }
    Xen.shutdown(.poweroff)
}

nonisolated(unsafe) var spinEnd: UInt64 = 0

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    var work = Work()
    work.run(until: spinEnd)
    PSCI.stopThisVCPU()
}
