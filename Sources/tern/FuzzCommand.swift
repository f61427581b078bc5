import ArgumentParser
import Foundation
import TernCore
import TernTool

struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Run fuzzing domains beside a canary domain; fail on a Tern fault, a hang or an anomaly.",
        discussion: """
            The seed is printed first. Fuzzing domain i of a run seeded S is seeded S + 1000003 i; each \
            of its first --ends generations ends itself on purpose (a reboot, crash, reset or watchdog \
            while its vCPUs are busy) and Tern restarts it, the next generation seeded 100000007 \
            further on. A failure prints, for each domain, the command that runs its latest generation \
            alone on one CPU (naming its peer, which is not there), which replays it exactly when it has \
            one vCPU and the failure involved no other domain. With --soak \
            it runs one seed after another until stopped, adding up operations and coverage. The last \
            run's report goes to results/fuzz.md. Exit status 1 when the run failed.
            """)

    @Option(help: "The seed (default: from the clock).")
    var seed: UInt64?

    @Option(help: "Operations per fuzzing domain.")
    var ops: UInt64 = 200_000

    @Option(help: "Physical CPUs of the QEMU machine.")
    var smp: Int = 2

    @Option(help: "Fuzzing domains beside the canary.")
    var domains: Int = 2

    @Option(help: "vCPUs of each fuzzing domain (default: --smp).")
    var vcpus: Int?

    @Option(help: "Generations of each fuzzing domain that end themselves and are restarted.")
    var ends: Int = 1

    @Flag(help: "The privileged mode: the control domain fuzzes, its domctls answered, and the --domains fuzzing domUs are its sacrificial domains (no canary).")
    var privileged = false

    @Option(help: "A lone fuzzing domain's peer ID, as in the run a replay repeats (printed in replays).")
    var peer: Int?

    @Flag(help: "Run seed after seed until stopped (make fuzz).")
    var soak = false

    @Flag(help: "Show every console line, not only the fuzzers' and the canary's.")
    var verbose = false

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    func validate() throws {
        try validateSMP(smp)
        guard ((privileged ? 0 : 1) ... 8).contains(domains) else {
            throw ValidationError("--domains must be 1 to 8 (0 to 8 with --privileged)")
        }
        let vcpus = self.vcpus ?? smp
        guard (1 ... TernLimits.maximumVCPUsPerDomain).contains(vcpus) else {
            throw ValidationError("--vcpus (default: --smp) must be 1 to \(TernLimits.maximumVCPUsPerDomain)")
        }
        // The guests read their arguments as decimal numbers that must fit in an Int.
        if let peer {
            guard (0 ..< 0x7FF0).contains(peer) else { throw ValidationError("--peer must be a domain ID below 32752") }
            guard domains == 1 && !privileged else { throw ValidationError("--peer is for one fuzzing domain alone (a replay)") }
        }
        guard (0 ... 100).contains(ends) else { throw ValidationError("--ends must be 0 to 100") }
        guard ops >= 1, ops <= 1_000_000_000_000 else { throw ValidationError("--ops must be 1 to 10^12") }
        if let seed, seed > 1_000_000_000_000_000 { throw ValidationError("--seed must be at most 10^18") }
    }

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: printOut)
        var plan = FuzzPlan(seed: seed ?? UInt64(Date().timeIntervalSince1970 * 1000) % 1_000_000_007,
                            ops: ops, smp: smp, domains: domains, vcpus: vcpus, ends: ends,
                            privileged: privileged, peer: peer)
        printOut("tern fuzz: seed \(plan.seed) (\(plan.command))")
        var total = FuzzOutcome()
        let started = Date()
        while true {
            let verbose = self.verbose
            let (outcome, _) = try FuzzRun.run(plan, runner: runner) { line in
                if verbose || line.contains("fuzz: ") || line.contains("canary: ") || line.hasPrefix("(tern)") { printOut(line) }
            }
            let report = outcome.report + outcome.failures.map { "FAILED: \($0)" }
            try writeReport(plan, outcome, report)
            printOut("")
            for line in report { printOut("tern fuzz: \(line)") }
            guard outcome.failures.isEmpty else {
                printError("tern fuzz: FAILED with seed \(plan.seed); run it again: \(plan.command)")
                for replay in outcome.replays(of: plan) { printError("tern fuzz: one fuzzing domain alone: \(replay)") }
                throw ExitCode(ExitStatus.failure)
            }
            guard soak else {
                printOut("tern fuzz: passed, seed \(plan.seed)")
                return
            }
            total.operations += outcome.operations
            total.killed += outcome.killed
            total.endings += outcome.endings
            total.restarts += outcome.restarts
            for (number, reached) in outcome.subops { total.subops[number, default: 0] |= reached }
            let seconds = Date().timeIntervalSince(started)
            printOut(String(format: "tern fuzz: soak: %llu operations in %.0f s (%.0f per second), %d sub-ops reached, %d fuzzing domains restarted (%d ended themselves, %d killed by Tern)",
                            total.operations, seconds, Double(total.operations) / seconds, total.subopsReached,
                            total.restarts, total.endings, total.killed.count))
            plan.seed = plan.seed &+ 1
            printOut("tern fuzz: seed \(plan.seed) (\(plan.command))")
        }
    }

    func writeReport(_ plan: FuzzPlan, _ outcome: FuzzOutcome, _ report: [String]) throws {
        let root = try packageRoot.map { PackageLayout(root: URL(fileURLWithPath: $0)) }?.root ?? PackageLayout.locate().root
        let results = root.appendingPathComponent("results")
        try FileManager.default.createDirectory(at: results, withIntermediateDirectories: true)
        let text = "# Fuzzing run\n\n`\(plan.command)`\n\n" + report.map { "- \($0)" }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: results.appendingPathComponent("fuzz.md"))
    }
}
