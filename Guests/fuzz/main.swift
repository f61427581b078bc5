// The fuzzing guest: a seeded stream of operations over the whole surface a guest has (Operations.swift),
// on every vCPU at once, counting what it did and reached. `seed`, `ops` (in all), `vcpus` and `ends`
// come from its command line; vCPU i draws the stream seeded with the (i+1)th number of the seed's own
// stream (so seeds next to each other share no vCPU's stream), and a run on one vCPU replays exactly.
// A restarted fuzzer (Tern rebuilt it after it ended itself, Ending.swift, or was killed) is the next
// generation and takes the next seed, which it prints.
// Aborts it provokes are skipped; the invariants it can see from inside (registers the hypervisor must
// give back, control-plane calls a domU must be refused) are checked as it goes and reported as
// ANOMALY lines. It ends with `fuzz: done`, its counts and the sub-ops reached, and powers off.
import GuestKit
import GuestKitAsm
import TernCore

/// Set by vCPU 0 before it starts the others (globals with initializers are set up lazily).
nonisolated(unsafe) var arena = Arena(scratch: 0, ramEnd: 0)
nonisolated(unsafe) var statsBlock: UnsafeMutablePointer<UInt64>!
nonisolated(unsafe) var seed: UInt64 = 0
nonisolated(unsafe) var opsPerVCPU: UInt64 = 0
nonisolated(unsafe) var vcpuCount = 1
nonisolated(unsafe) var generation = 0
nonisolated(unsafe) var ending: Ending?
nonisolated(unsafe) var peer: UInt16?
nonisolated(unsafe) var privileged = false
nonisolated(unsafe) var victims = 0
/// vCPUs started (vCPU 0 lets them fuzz once all are, so none is started by a stray CPU_ON) and done.
nonisolated(unsafe) var started: UInt64 = 0
nonisolated(unsafe) var go: UInt64 = 0
nonisolated(unsafe) var finished: UInt64 = 0

func stats(_ vcpu: Int) -> Stats { Stats(base: statsBlock + vcpu * Stats.words) }

/// Data aborts the fuzzing provoked (MMIO to holes, scratch pages it unmapped) are counted and stepped
/// over. One in the fuzzer's own memory, or an instruction abort, means a hypercall took a page of its
/// own after all (a stale scratch word read as a frame, say): it says so and crashes, and the harness
/// counts it as killed.
func skipAbort(_ esr: UInt64, _ elr: UInt64, _ far: UInt64) -> UInt64? {
    guard esr >> 26 == 0x25, !arena.isOwn(far) else {
        let what: StaticString = esr >> 26 == 0x25 ? "a data abort in its own memory" : "an instruction abort"
        print("fuzz: killed by \(what) at \(hex(far)) (pc \(hex(elr)), seed \(seed))")
        return nil
    }
    stats(VCPU.index).count(.aborts)
    return elr + 4
}

func fuzz(vcpu: Int) {
    guest_irq_disable()
    var seeds = SplitMix64(state: seed)
    var state = seeds.next()
    for _ in 0 ..< vcpu { state = seeds.next() }
    var fuzzer = Fuzzer(random: SplitMix64(state: state), arena: arena, vcpus: vcpuCount, stats: stats(vcpu), peer: peer,
                        privileged: privileged, victims: victims)
    let endsAfter = ending.flatMap { $0.vcpu == vcpu ? $0.op : nil } ?? .max
    for done in 0 ..< opsPerVCPU {
        if done == endsAfter {
            let operations = (0 ..< vcpuCount).reduce(0) { $0 + stats($1)[.ops] }
            ending!.perform(generation: generation, operations: operations)
        }
        fuzzer.step()
        if vcpu == 0 && done % 100_000 == 99_999 { print("fuzz: vcpu0 at \(done + 1) ops") }
    }
    fuzzer.unmapAll()
    write_cntv_ctl_el0(0)
    write_cntp_ctl_el0(0)
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    generation = args.restarts
    seed = Ending.seed(UInt64(args.integer("seed", default: 1)), generation: generation)
    let ops = UInt64(args.integer("ops", default: 100_000))
    vcpuCount = max(1, min(args.integer("vcpus", default: 1), 8))
    opsPerVCPU = ops / UInt64(vcpuCount)
    let endsLeft = args.integer("ends", default: 0) - generation
    ending = Ending(seed: seed, endsLeft: endsLeft, vcpus: vcpuCount, opsPerVCPU: opsPerVCPU)
    privileged = args.integer("privileged", default: 0) != 0
    victims = min(args.integer("victims", default: 0), 64)
    let peerID = args.integer("peer", default: -1)
    peer = peerID >= 0 && peerID < 0x7FF0 ? UInt16(peerID) : nil
    print("fuzz: seed=\(seed) ops=\(opsPerVCPU * UInt64(vcpuCount)) vcpus=\(vcpuCount) generation=\(generation) ends=\(max(0, endsLeft)) peer=\(peerID) privileged=\(privileged ? 1 : 0) victims=\(victims)")
    guard args.memoryBytes >= 16 << 20 else {
        print("fuzz: FAILED: needs at least 16 MiB")
        Xen.shutdown(.crash)
    }
    // Scratch is the top of RAM but the last 2 MiB (where the device tree is): far from the image.
    let ramEnd = GuestLayout.ram.raw + args.memoryBytes
    arena = Arena(scratch: ramEnd - (2 << 20) - Arena.pages * 4096, ramEnd: ramEnd)
    statsBlock = Stats.allocate(vcpus: vcpuCount)
    if peer != nil {
        let placed = Grants.placeTable()
        if placed != 0 { print("fuzz: FAILED to place its grant table: \(placed)") }
    }
    abortHandler = skipAbort
    Interrupts.start()
    guest_irq_disable()
    for i in 1 ..< vcpuCount {
        let r = PSCI.startVCPU(i)
        if r != 0 {
            print("fuzz: FAILED to start vcpu \(i): PSCI \(r)")
            Xen.shutdown(.crash)
        }
    }
    while atomicLoad(&started) != UInt64(vcpuCount - 1) { Xen.yield() }
    atomicAdd(&go)
    let start = Timer.milliseconds
    fuzz(vcpu: 0)
    while atomicLoad(&finished) != UInt64(vcpuCount - 1) { Xen.yield() }
    report(milliseconds: Timer.milliseconds - start)
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    Interrupts.start()
    guest_irq_disable()
    atomicAdd(&started)
    while atomicLoad(&go) == 0 { guest_wfe() }
    fuzz(vcpu: Int(index))
    atomicAdd(&finished)
    while true { Xen.yield() }                  // stays on: a stray CPU_ON finds it ALREADY_ON
}


func report(milliseconds: UInt64) {
    let total = stats(0)
    for v in 1 ..< vcpuCount { total.add(stats(v)) }
    let rate = milliseconds == 0 ? 0 : total[.ops] * 1000 / milliseconds
    print("")       // ends a line of console_io bytes the fuzzing left unfinished
    print("fuzz: counts hypercalls=\(total[.hypercalls]) mmio=\(total[.mmio]) sysregs=\(total[.systemRegisters]) psci=\(total[.psci]) waits=\(total[.waits]) yields=\(total[.yields]) aborts=\(total[.aborts]) undefined=\(undefinedInstructions)")
    if peer != nil {
        print("fuzz: counts peer=\(total[.peer]) peer-mapped=\(total[.peerMapped]) peer-copied=\(total[.peerCopied]) peer-bound=\(total[.peerBound])")
    }
    var regions = "fuzz: mmio"
    for r in 0 ..< 6 {
        let region = Region(rawValue: r)!
        regions += " \(region.name)=\(total.region(region))"
    }
    print(regions)
    var subops = 0
    for n in 0 ... UInt64(Stats.numbers) where total.calls(n) != 0 {
        let reached = total.reached(n)
        subops += reached.nonzeroBitCount
        print("fuzz: hypercall \(n == UInt64(Stats.numbers) ? "64+" : "\(n)") calls=\(total.calls(n)) subops=\(hex(reached))")
    }
    print("fuzz: done seed=\(seed) ops=\(total[.ops]) subops=\(subops) anomalies=\(total[.anomalies]) ms=\(milliseconds) ops/s=\(rate)")
}
