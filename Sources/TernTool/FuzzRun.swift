import Foundation

/// `tern fuzz`: fuzzing domains (Guests/fuzz) beside a canary (Guests/canary, whose partner is the
/// control domain), on one QEMU machine. The run fails if Tern faults or hangs, if a fuzzer or the
/// canary reports an ANOMALY or a failure of its own, if the canary stops or falls silent, or if no
/// fuzzing domain finished. A fuzzing domain that ends itself on purpose (`ends`: a reboot, a crash,
/// a reset or a watchdog while its vCPUs are busy) or that Tern ends for what it did is restarted by
/// Tern with the next seed (its config says restart), and counted, not a failure.
/// Domain i of a run seeded S is seeded `seed(ofDomain: i)`, its generation g (after g restarts)
/// `seed(ofDomain: i) + g * 100000007`. Run alone with that seed on one CPU, a generation draws the
/// same operations again; that replays it exactly when it has one vCPU and what failed did not
/// involve another domain (alone it is domain 2, and its peer, still named, is not there). With
/// several vCPUs, their interleaving (and so what each call meets) is the host's.
/// The privileged mode is another layout: the control domain is a fuzzer whose domctls are answered
/// (Guests/fuzz/Privileged.swift), and the fuzzing domUs beside it are sacrificial - whatever they
/// report is counted, not judged, since the control domain may do anything to them; the run fails
/// on a Tern fault, a hang, or the privileged fuzzer's own anomaly, failure or end.
public struct FuzzPlan: Sendable {
    public var seed: UInt64
    /// Operations per fuzzing domain (shared among its vCPUs).
    public var ops: UInt64
    public var smp: Int
    public var domains: Int
    public var vcpus: Int
    /// How many generations of each fuzzing domain end themselves on purpose.
    public var ends: Int
    public var privileged: Bool
    /// A lone fuzzing domain's peer as in the run it replays: the domain is not there, so its peer
    /// operations are refused, but they draw the same numbers, and so does everything after them.
    public var peer: Int?

    public init(seed: UInt64, ops: UInt64, smp: Int, domains: Int = 2, vcpus: Int? = nil, ends: Int = 0,
                privileged: Bool = false, peer: Int? = nil) {
        self.seed = seed
        self.ops = ops
        self.smp = smp
        self.domains = domains
        self.vcpus = vcpus ?? smp
        self.ends = ends
        self.privileged = privileged
        self.peer = peer
    }

    /// The fuzzing domUs' IDs start after the partner (0) and the canary (1); in the privileged mode
    /// after the privileged fuzzer (0), whose sacrificial domains they are.
    public var firstFuzzer: Int { privileged ? 1 : 2 }
    public func isFuzzer(_ domain: Int) -> Bool { domain >= firstFuzzer && domain < firstFuzzer + domains }
    /// The domains the run waits for: the fuzzing domUs, or the privileged fuzzer.
    public func awaits(_ domain: Int) -> Bool { privileged ? domain == 0 : isFuzzer(domain) }
    public var awaited: Int { privileged ? 1 : domains }

    /// Fuzzing domU i's seed; the privileged fuzzer's is the run's own, and its domUs' are i + 1's.
    public func seed(ofDomain i: Int) -> UInt64 { seed &+ UInt64(i + (privileged ? 1 : 0)) &* 1_000_003 }

    public var command: String {
        "tern fuzz --seed \(seed) --ops \(ops) --smp \(smp) --domains \(domains) --vcpus \(vcpus) --ends \(ends)"
            + (privileged ? " --privileged" : "") + (peer.map { " --peer \($0)" } ?? "")
    }

    /// A bound on the run, so a hang ends it and a healthy run never meets it: at least 500 operations
    /// a second for each vCPU's share of a CPU (runs here did 1,000 to 2,000), for every generation.
    public var timeout: TimeInterval {
        90 + Double(ops) / Double(vcpus) / 500 * max(1, Double((domains + (privileged ? 1 : 0)) * vcpus) / Double(smp)) * Double(1 + ends)
    }

    /// The command that runs generation `generation` of fuzzing domain `i` alone on one CPU (see above
    /// for when that replays it): its own seed, as many ends still to come, and a peer that is not
    /// there (alone, it is the first fuzzing domain; only the draws must match, not the ID).
    public func replay(domain i: Int, generation: Int) -> String {
        let seed = seed(ofDomain: i) &+ UInt64(generation) &* 100_000_007
        let peer = peerID(of: i).map { $0 == firstFuzzer ? firstFuzzer + 1 : $0 }
        return "tern fuzz --seed \(seed) --ops \(ops) --smp 1 --domains 1 --vcpus \(vcpus) --ends \(max(0, ends - generation))"
            + (peer.map { " --peer \($0)" } ?? "")
    }

    /// Fuzzing domain i's peer: the next one, or the one a replay names.
    func peerID(of i: Int) -> Int? {
        if let peer { return peer }
        return domains > 1 ? firstFuzzer + (i + 1) % domains : nil
    }

    /// The configs, in domain-ID order: file name and text.
    public var configs: [(name: String, text: String)] {
        var configs = privileged ? [
            ("privileged", """
                name = "fuzz-privileged"
                kernel = "tern:fuzz"
                memory = 32
                vcpus = \(vcpus)
                extra = "seed=\(seed) ops=\(ops) vcpus=\(vcpus) privileged=1 victims=\(domains)"

                """),
        ] : [
            ("partner", """
                name = "partner"
                kernel = "tern:canary"
                memory = 32
                extra = "role=partner peer=1"

                """),
            ("canary", """
                name = "canary"
                kernel = "tern:canary"
                memory = 32
                extra = "role=canary peer=0 seed=\(seed)"

                """),
        ]
        for i in 0 ..< domains {
            // Each fuzzing domain's peer is the next (Guests/fuzz/Peer.swift); alone, it has none.
            let peer = peerID(of: i).map { " peer=\($0)" } ?? ""
            configs.append(("fuzz\(i)", """
                name = "fuzz\(i)"
                kernel = "tern:fuzz"
                memory = 32
                vcpus = \(vcpus)
                extra = "seed=\(seed(ofDomain: i)) ops=\(ops) vcpus=\(vcpus) ends=\(ends)\(peer)"
                on_reboot = "restart"
                on_crash = "restart"
                on_watchdog = "restart"

                """))
        }
        return configs
    }
}

/// What a fuzzing run's console says, added up.
public struct FuzzOutcome: Sendable, Equatable {
    /// Operations the fuzzing domains report done.
    public var operations: UInt64 = 0
    /// Fuzzing domains that finished (printed `fuzz: done`).
    public var finished = 0
    /// Generations of fuzzing domains that ended themselves on purpose (and the operations they did
    /// are in `operations`), and those that ended otherwise before they finished, Tern having ended
    /// them for what they did: "d2 (fuzz0): crash".
    public var endings = 0
    public var killed: [String] = []
    /// Fuzzing domains Tern built again after either, and any it could not.
    public var restarts = 0
    public var notRebuilt: [String] = []
    /// The latest generation seen of each fuzzing domain, by index (domain ID - firstFuzzer).
    public var generations: [Int: Int] = [:]
    /// ANOMALY lines, and `anomalies=` counts above zero in reports (a line the console split in two
    /// still counts), and a guest's own FAILED lines.
    public var anomalies: [String] = []
    public var guestFailures: [String] = []
    /// In the privileged mode, what the sacrificial domains said of the same kinds (not failures).
    public var sacrificialReports: [String] = []
    /// Whether the plan has a canary, and (privileged mode) whether its fuzzer finished.
    var watchesCanary = true
    var privilegedFinished: Bool?
    /// Tern's fault report, if it faulted.
    public var fault: [String] = []
    /// Canary status lines, and how many came after the last fuzzing domain finished.
    public var canaryReports = 0
    public var canaryReportsAfterFuzzing = 0
    public var canaryStopped: String?
    public var lastCanaryReport: String?
    /// By hypercall number ("64+" for those beyond): calls, and the sub-ops reached (bit n: sub-op n
    /// was answered with something other than -ENOSYS).
    public var calls: [String: UInt64] = [:]
    public var subops: [String: UInt64] = [:]
    /// Added up over the fuzzing domains: hypercalls, mmio, aborts, ... and MMIO by region.
    public var counts: [String: UInt64] = [:]
    public var mmio: [String: UInt64] = [:]
    public var opsPerSecond: [UInt64] = []
    public var timedOut = false

    public var subopsReached: Int { subops.values.reduce(0) { $0 + $1.nonzeroBitCount } }

    public var failures: [String] {
        var failures: [String] = []
        if !fault.isEmpty { failures.append("Tern faulted: " + fault.joined(separator: " | ")) }
        if timedOut { failures.append("the run did not end in time: a hang (see the vCPU dump above)") }
        failures += anomalies + guestFailures + notRebuilt.map { "Tern could not restart a fuzzing domain: \($0)" }
        if let canaryStopped { failures.append("the canary stopped: \(canaryStopped)") }
        if !timedOut && fault.isEmpty {
            // Two reports: the first may come from a check of its memory begun before the end.
            if watchesCanary && canaryReportsAfterFuzzing < 2 { failures.append("the canary said too little after the fuzzing ended") }
            if privilegedFinished == false { failures.append("the privileged fuzzer did not finish") }
            if finished == 0 { failures.append("no fuzzing domain finished") }
        }
        return failures
    }

    public init() {}

    /// Reads the console of a run of `plan`.
    public init(lines: [String], plan: FuzzPlan, timedOut: Bool) {
        self.timedOut = timedOut
        watchesCanary = !plan.privileged
        if plan.privileged { privilegedFinished = false }
        var inFault = false
        var fuzzersGone = Set<Int>()
        /// Domains that said they end themselves, with the operations they counted then.
        var endingAnnounced: [Int: UInt64] = [:]
        var anomalySources = Set<String>()
        for line in lines {
            if line.contains("HYPERVISOR FAULT") { inFault = true }
            if inFault {
                if line.hasPrefix("(tern)") { fault.append(line) }
                continue
            }
            let sacrificial = plan.privileged && Self.domain(line).map(plan.isFuzzer) == true
            if line.contains("ANOMALY") {
                if sacrificial { sacrificialReports.append(line) } else { anomalies.append(line) }
                anomalySources.insert(String(line.prefix { $0 != " " }))     // its count adds nothing
            }
            if line.contains("fuzz: FAILED") || line.contains("canary: FAILED") {
                if sacrificial { sacrificialReports.append(line) } else { guestFailures.append(line) }
            }
            // Not rebuilt: gone for good (no other line says so). A sacrificial domain's is not judged.
            if line.hasPrefix("(tern)") && line.contains("could not be rebuilt") {
                let d = line.dropFirst("(tern) d".count).prefix { $0.isNumber }
                if let d = Int(d), plan.awaits(d) { fuzzersGone.insert(d) }
                if sacrificial || plan.privileged && Int(d).map(plan.isFuzzer) == true {
                    sacrificialReports.append(line)
                } else {
                    notRebuilt.append(line)
                }
            }
            if let shutdown = ShutdownLine(line) {
                if plan.isFuzzer(shutdown.domain) || plan.awaits(shutdown.domain) {
                    let restarting = line.contains("(restarting)")
                    if restarting { restarts += 1 } else if plan.awaits(shutdown.domain) { fuzzersGone.insert(shutdown.domain) }
                    // (A watchdog announced that lost the race with the last operation was taken back
                    // at its `done` line.)
                    let announced = endingAnnounced.removeValue(forKey: shutdown.domain) != nil
                    if shutdown.reason != "poweroff" && !announced {
                        killed.append("d\(shutdown.domain) (\(shutdown.name)): \(shutdown.reason)")
                    }
                } else if !plan.privileged {
                    canaryStopped = "d\(shutdown.domain) (\(shutdown.name)): \(shutdown.reason)"
                }
                continue
            }
            guard let text = line.range(of: "fuzz: ").map({ String(line[$0.lowerBound...]) })
                    ?? line.range(of: "canary: t=").map({ String(line[$0.lowerBound...]) }) else { continue }
            let words = text.split(separator: " ").map(String.init)
            let fields = Self.fields(words)
            // Counts are running totals: one failure per domain that reports any and said no ANOMALY line.
            let source = String(line.prefix { $0 != " " })
            if let count = fields["anomalies"], count > 0, !anomalySources.contains(source) {
                anomalySources.insert(source)
                let report = "\(source) reports \(count) anomalies: \(text)"
                if sacrificial { sacrificialReports.append(report) } else { anomalies.append(report) }
            }
            if text.hasPrefix("canary: ") {
                canaryReports += 1
                lastCanaryReport = text
                if fuzzersGone.count == plan.awaited { canaryReportsAfterFuzzing += 1 }
                continue
            }
            switch words.count > 1 ? words[1] : "" {
            case "generation" where text.contains("ends itself"):
                endings += 1
                operations += fields["ops"] ?? 0
                if let d = Self.domain(line) { endingAnnounced[d] = fields["ops"] ?? 0 }
            case _ where words.count > 1 && words[1].hasPrefix("seed="):
                if let d = Self.domain(line), plan.isFuzzer(d), let g = fields["generation"] {
                    generations[d - plan.firstFuzzer] = Int(g)
                }
            case "done":
                // A watchdog announced that lost the race with the last operation: the generation did
                // not end itself, and this line counts all its operations, those announced among them.
                if let d = Self.domain(line), let counted = endingAnnounced.removeValue(forKey: d) {
                    operations -= min(operations, counted)
                    endings -= 1
                }
                finished += 1
                if plan.privileged && Self.domain(line) == 0 { privilegedFinished = true }
                operations += fields["ops"] ?? 0
                if let rate = fields["ops/s"] { opsPerSecond.append(rate) }
            case "counts":
                for (key, value) in fields { counts[key, default: 0] += value }
            case "mmio":
                for (key, value) in fields { mmio[key, default: 0] += value }
            case "hypercall" where words.count > 2:
                calls[words[2], default: 0] += fields["calls"] ?? 0
                subops[words[2], default: 0] |= fields["subops"] ?? 0
            default:
                break
            }
        }
    }

    /// N of a guest's line, "(dN) ...".
    static func domain(_ line: String) -> Int? {
        guard line.hasPrefix("(d") else { return nil }
        return Int(line.dropFirst(2).prefix { $0.isASCII && $0.isNumber })
    }

    /// key=value words; values in decimal or 0x hex.
    static func fields(_ words: [String]) -> [String: UInt64] {
        var fields: [String: UInt64] = [:]
        for word in words {
            let parts = word.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let value = parts[1].hasPrefix("0x") ? UInt64(parts[1].dropFirst(2), radix: 16) : UInt64(parts[1])
            if let value { fields[String(parts[0])] = value }
        }
        return fields
    }

    /// The commands that run each fuzzing domain's latest generation alone on one CPU.
    public func replays(of plan: FuzzPlan) -> [String] {
        // The privileged fuzzer's run is its domains' too: the whole command is its replay.
        if plan.privileged { return [plan.command] }
        return (0 ..< plan.domains).map { plan.replay(domain: $0, generation: generations[$0] ?? 0) }
    }

    /// The report: what was done and reached, what went wrong.
    public var report: [String] {
        var lines = ["operations: \(operations) in \(finished) finished fuzzing domains"
                     + (opsPerSecond.isEmpty ? "" : ", \(opsPerSecond.reduce(0, +)) per second in all")]
        lines.append("hypercall sub-ops reached: \(subopsReached), over \(calls.count) hypercall numbers")
        let numbers = calls.keys.sorted { (Int($0) ?? 1000) < (Int($1) ?? 1000) }
        lines.append("calls by hypercall: " + numbers.map { "\($0)=\(calls[$0]!)" }.joined(separator: " "))
        lines.append("MMIO by region: " + mmio.keys.sorted().map { "\($0)=\(mmio[$0]!)" }.joined(separator: " "))
        lines.append("other: " + counts.keys.sorted().filter { $0 != "hypercalls" && $0 != "mmio" }
                        .map { "\($0)=\(counts[$0]!)" }.joined(separator: " "))
        lines.append("fuzzing domains restarted: \(restarts), after ending themselves on purpose: \(endings), "
                     + "ended otherwise (by Tern, or by the privileged fuzzer in that mode): \(killed.count)"
                     + (killed.isEmpty ? "" : " (\(killed.joined(separator: ", ")))"))
        lines.append("Tern faults: \(fault.isEmpty ? 0 : 1); anomalies: \(anomalies.count)")
        if !sacrificialReports.isEmpty {
            lines.append("the sacrificial domains reported (not failures: the control domain may do anything to them): "
                         + sacrificialReports.prefix(5).joined(separator: " | ") + (sacrificialReports.count > 5 ? " ..." : ""))
        }
        if let lastCanaryReport { lines.append("canary, last: \(lastCanaryReport)") }
        return lines
    }
}

public enum FuzzRun {
    /// Boots `plan`'s domains and reads the outcome. The machine is stopped once every fuzzing domain
    /// is done or gone and the canary has reported once more after that.
    public static func run(_ plan: FuzzPlan, runner: TernRunner, onLine: @escaping @Sendable (String) -> Void) throws -> (FuzzOutcome, RunResult) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-fuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let configs = try plan.configs.enumerated().map { i, config in
            let file = folder.appendingPathComponent(String(format: "%02d-%@.cfg", i, config.name))
            try Data(config.text.utf8).write(to: file)
            return file
        }
        let watch = StopWatch(plan)
        let options = RunOptions(smp: plan.smp, timeout: plan.timeout, extraQEMUArguments: [],
                                 stopWhen: { watch.shouldStop(after: $0) })
        let result = try runner.run(configs: configs, options: options, onLine: onLine)
        return (FuzzOutcome(lines: result.lines, plan: plan, timedOut: result.timedOut), result)
    }

    /// Counts the awaited fuzzing domains done or gone (not restarting); then the canary's second report
    /// ends the run (the first may come from a check of its memory begun before the last fuzzer ended),
    /// or, with no canary, that does.
    final class StopWatch: @unchecked Sendable {
        let plan: FuzzPlan
        private let lock = NSLock()
        private var gone = Set<Int>()
        private var reportsAfter = 0
        init(_ plan: FuzzPlan) { self.plan = plan }

        func shouldStop(after line: String) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            if let shutdown = ShutdownLine(line), plan.awaits(shutdown.domain), !line.contains("(restarting)") {
                gone.insert(shutdown.domain)
            }
            // One Tern could not rebuild is gone too, though no shutdown line says so.
            if line.hasPrefix("(tern) d") && line.contains("could not be rebuilt"),
               let d = Int(line.dropFirst("(tern) d".count).prefix { $0.isNumber }), plan.awaits(d) {
                gone.insert(d)
            }
            guard gone.count == plan.awaited else { return false }
            if plan.privileged { return true }
            if line.contains("canary: t=") { reportsAfter += 1 }
            return reportsAfter == 2
        }
    }
}
