// A fuzzing domain ends itself on purpose, at a point its seed picks, while its other vCPUs are in the
// middle of whatever they drew: a shutdown for reboot or crash, PSCI SYSTEM_RESET by HVC or by SMC, or
// a watchdog armed and left to run out. Tern must stop the other vCPUs wherever they are, give back
// what the domain held, and (its config says restart) build it again: the next generation, which reads
// how many times it was restarted from its device tree and takes the next seed. `ends=E` on the command
// line is how many generations end this way; the rest run their operations out.
import GuestKit
import GuestKitAsm
import TernCore

struct Ending {
    enum Method: UInt64 {
        case reboot, crash, systemReset, systemResetBySMC, watchdog

        var name: StaticString {
            switch self {
            case .reboot: "SCHEDOP_shutdown(reboot)"
            case .crash: "SCHEDOP_shutdown(crash)"
            case .systemReset: "PSCI SYSTEM_RESET"
            case .systemResetBySMC: "PSCI SYSTEM_RESET by SMC"
            case .watchdog: "a watchdog left to run out"
            }
        }
    }

    let vcpu: Int
    /// The vCPU's operation it comes after.
    let op: UInt64
    let method: Method

    /// Generation g's seed: the next seeds of a soak (seed + 1) and the other domains' (seed +
    /// 1000003 i) are far from it.
    static func seed(_ first: UInt64, generation: Int) -> UInt64 { first &+ UInt64(generation) &* 100_000_007 }

    /// Where a generation seeded `seed` ends itself, if `endsLeft` says it does: drawn from the seed's
    /// 10th number (its vCPUs' streams are seeded by the 1st to the 8th), so a run with the same seed
    /// and a nonzero `endsLeft` ends at the same point.
    init?(seed: UInt64, endsLeft: Int, vcpus: Int, opsPerVCPU: UInt64) {
        guard endsLeft > 0, opsPerVCPU > 0 else { return nil }
        var seeds = SplitMix64(state: seed)
        var state: UInt64 = 0
        for _ in 0 ..< 10 { state = seeds.next() }
        var random = SplitMix64(state: state)
        vcpu = Int(random.below(UInt64(vcpus)))
        op = random.below(opsPerVCPU)
        method = Method(rawValue: random.below(5))!
    }

    /// Says how many operations this generation did (all its vCPUs', as far as they have counted), then
    /// ends it; a watchdog's end comes a second later, the fuzzing going on meanwhile.
    func perform(generation: Int, operations: UInt64) {
        print("")       // ends a line of console_io bytes the fuzzing left unfinished
        print("fuzz: generation \(generation) ends itself by \(method.name) after ops=\(operations)")
        let result: Int64
        switch method {
        case .reboot, .crash:
            var reason = UInt32(method == .reboot ? ShutdownReason.reboot.rawValue : ShutdownReason.crash.rawValue)
            result = Xen.call(.sched_op, SchedOpCommand.shutdown.rawValue, pointingTo: &reason)
        case .systemReset:
            result = guest_hvc0(UInt64(PSCIFunction.system_reset.rawValue), 0, 0, 0)
        case .systemResetBySMC:
            result = guest_smc0(UInt64(PSCIFunction.system_reset.rawValue), 0, 0, 0)
        case .watchdog:
            var request: (id: UInt32, timeout: UInt32) = (0, 1)
            let id = Xen.call(.sched_op, SchedOpCommand.watchdog.rawValue, pointingTo: &request)
            if id <= 0 { print("fuzz: FAILED: SCHEDOP_watchdog answered \(id)") }
            return
        }
        // A shutdown of one's own domain does not come back (Xen deschedules the caller for good).
        print("fuzz: FAILED: \(method.name) came back with \(result)")
    }
}
