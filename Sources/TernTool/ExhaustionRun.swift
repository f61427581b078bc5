import Foundation

/// Resource exhaustion (Guests/exhaust): a domU takes every event channel, every grant-mapping handle,
/// every vCPU it has, floods the console and asks for memory it may not have, holding each a few
/// seconds while asking for more, and checks it is answered as Xen answers. Beside it the canary
/// (Guests/canary) does an event-channel round trip with dom0 every 10 ms: its round trips in each
/// phase, against those before the first and after the last, show whether the others kept their
/// service. Wall time, Tern only; reported by `tern bench`, never asserted (the test asserts the
/// answers and that nothing failed).
public struct ExhaustionRun: Sendable {
    public struct Phase: Sendable, Equatable {
        public var name: String
        public var rounds = 0
        public var averageMicroseconds = 0.0
        public var longestMicroseconds = 0.0
    }

    public static let modes = ["events", "maptrack", "vcpus", "console", "memory"]

    /// "before", each mode, "after", in that order.
    public var phases: [Phase] = []
    /// The exhaustion guest's lines saying what it took and how it was refused.
    public var answers: [String] = []
    public var failures: [String] = []

    /// Dom0 is the canary's partner (d0), the canary d1, the exhaustion guest d2 with 4 vCPUs.
    public static func configs(hold: Int) -> [(name: String, text: String)] {
        [
            ("partner", "name = \"partner\"\nkernel = \"tern:canary\"\nmemory = 32\nextra = \"role=partner peer=1\"\n"),
            ("canary", "name = \"canary\"\nkernel = \"tern:canary\"\nmemory = 32\nextra = \"role=canary peer=0 seed=5\"\n"),
            // 4 vCPUs and 64 MiB give it a table pool of 1280 pages (TablePool.defaultPages): room for
            // the 520 or so that 262,144 grant mappings a page apart take, so the maptrack runs out first.
            ("exhaust", "name = \"exhaust\"\nkernel = \"tern:exhaust\"\nmemory = 64\nvcpus = 4\n"
                + "extra = \"domid=2 vcpus=4 hold=\(hold)\"\n"),
        ]
    }

    public init(lines: [String], timedOut: Bool) {
        var current: String? = "before"
        var byName: [String: (rounds: Int, total: Double, longest: Double)] = [:]
        var done = false, inFault = false
        for line in lines {
            if line.contains("HYPERVISOR FAULT") { inFault = true }
            if inFault {
                if line.hasPrefix("(tern)") { failures.append(line) }
                continue
            }
            if line.contains("ANOMALY") || line.contains(": FAILED") { failures.append(line) }
            if let shutdown = ShutdownLine(line), shutdown.domain < 2 {
                failures.append("d\(shutdown.domain) (\(shutdown.name)) stopped: \(shutdown.reason)")
            }
            guard let text = line.range(of: "exhaust: ").map({ String(line[$0.lowerBound...]) })
                    ?? line.range(of: "canary: t=").map({ String(line[$0.lowerBound...]) }) else { continue }
            let words = text.split(separator: " ").map(String.init)
            if text.hasPrefix("canary: ") {
                let fields = FuzzOutcome.fields(words.map { $0.hasSuffix("us") ? String($0.dropLast(2)) : $0 })
                guard let phase = current, let rounds = fields["last-rounds"], rounds > 0,
                      let average = fields["last-avg"], let longest = fields["last-max"] else { continue }
                var p = byName[phase] ?? (0, 0, 0)
                p.rounds += Int(rounds)
                p.total += Double(average) * Double(rounds)
                p.longest = max(p.longest, Double(longest))
                byName[phase] = p
            } else if words.count >= 3, words[2] == "holding" {
                current = words[1]
            } else if words.count >= 3, words[2] == "released" {
                current = nil               // between phases: neither one's
            } else if words.count >= 2, words[1] == "starting" {
                current = nil               // taking it all: the phases begin when it holds it
            } else if words.count >= 2, words[1] == "done" {
                current = "after"
                done = true
            } else if text.contains(" as Xen)") {
                answers.append(text)
            }
        }
        if timedOut { failures.append("the run did not end in time") }
        if !done { failures.append("the exhaustion guest did not finish") }
        for name in ["before"] + Self.modes + ["after"] {
            let p = byName[name] ?? (0, 0, 0)
            phases.append(Phase(name: name, rounds: p.rounds, averageMicroseconds: p.rounds == 0 ? 0 : p.total / Double(p.rounds),
                                longestMicroseconds: p.longest))
        }
    }

    /// Boots the three domains and reads the run; stops two canary reports after the guest is done.
    public static func run(runner: TernRunner, hold: Int = 3) throws -> (ExhaustionRun, RunResult) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-exhaust-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let configs = try configs(hold: hold).enumerated().map { i, config in
            let file = folder.appendingPathComponent("\(i)-\(config.name).cfg")
            try Data(config.text.utf8).write(to: file)
            return file
        }
        let after = Counter()
        let result = try runner.run(configs: configs, smp: 2, timeout: Double(60 + 6 * hold * modes.count),
                                    stopWhen: { after.count($0) })
        return (ExhaustionRun(lines: result.lines, timedOut: result.timedOut), result)
    }

    /// Canary reports after the exhaustion guest said it was done: the second ends the run.
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var done = false, reports = 0
        func count(_ line: String) -> Bool {
            lock.lock()
            defer { lock.unlock() }
            if line.contains("exhaust: done") { done = true }
            if done && line.contains("canary: t=") { reports += 1 }
            return reports >= 2
        }
    }

    /// The table `tern bench` prints.
    public var markdown: String {
        var text = "| Phase (a domU holds ...) | Round trips | Average | Longest |\n|---|---:|---:|---:|\n"
        let names = ["before": "nothing yet", "events": "every event channel", "maptrack": "every grant-mapping handle",
                     "vcpus": "every vCPU it has, spinning", "console": "the console, flooding it",
                     "memory": "asks for memory it may not have", "after": "nothing any more"]
        for p in phases {
            text += "| \(names[p.name] ?? p.name) | \(p.rounds) | \(String(format: "%.0f", p.averageMicroseconds)) µs | "
                + "\(String(format: "%.0f", p.longestMicroseconds)) µs |\n"
        }
        text += "\n" + answers.map { "- `\($0)`" }.joined(separator: "\n") + "\n"
        if !failures.isEmpty { text += "\nFAILED:\n" + failures.map { "- \($0)" }.joined(separator: "\n") + "\n" }
        return text
    }
}
