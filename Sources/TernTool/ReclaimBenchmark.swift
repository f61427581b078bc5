import Foundation

/// How long a busy domain's vCPU is kept from its CPU while a 1 GiB domain beside it is destroyed, on
/// one CPU: Tern scrubs a dead domain's memory a chunk per scheduling pass, outside the scheduler lock,
/// so the longest wait stays near a time slice instead of the whole scrub. Wall time, Tern only.
public enum ReclaimBenchmark {
    public static let metric = "Longest wait of a busy vCPU while a 1 GiB domain is destroyed (1 CPU), wall time"

    public static func run(runner: TernRunner, runs: Int, progress: @escaping (String) -> Void) throws -> ComparisonRow {
        let examples = runner.layout.root.appendingPathComponent("examples")
        let configs = ["spin-gaps", "big-hello"].map { examples.appendingPathComponent("\($0).cfg") }
        var samples: [Double] = []
        for run in 1 ... runs {
            let r = try runner.run(configs: configs, smp: 1, timeout: 120)
            if let gap = longestGap(r.lines) {
                samples.append(gap / 1000)
                progress("reclaim run \(run): longest wait \(String(format: "%.1f", gap / 1000)) ms")
            } else {
                progress("reclaim run \(run): no gap reported\n" + r.lines.suffix(10).joined(separator: "\n"))
            }
        }
        return ComparisonRow(metric: metric, unit: "ms", tern: samples, xen: [])
    }

    /// "spin: longest gap N us" from the spinning domain.
    public static func longestGap(_ lines: [String]) -> Double? {
        for line in lines where line.contains("spin: longest gap ") {
            let words = line.split(separator: " ")
            if let i = words.firstIndex(of: "gap"), i + 1 < words.count { return Double(words[i + 1]) }
        }
        return nil
    }
}
