import Foundation

/// How much of the CPUs' time goes to waiting for run-queue locks, with the 64 neighbours
/// domains of the scaling test (32 pairs playing event-channel ping-pong, then timed work) on 2 and on
/// 4 CPUs. Wall-clock time, one run each. Tern alone: Xen prints no such count. On a host with fewer
/// cores than QEMU has CPUs, a lock holder's thread is often descheduled by the host, which the 4-CPU
/// row shows on a 2-core machine.
public enum LockContentionBenchmark {
    public static let cpuCounts = [2, 4]

    public static func run(runner: TernRunner, progress: @escaping (String) -> Void) throws -> [ComparisonRow] {
        var rows: [ComparisonRow] = []
        for cpus in cpuCounts {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-contention-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let configs = try neighbourConfigs(count: 64, in: folder)
            let r = try runner.run(configs: configs, options: RunOptions(smp: cpus, timeout: 150), onLine: { _ in })
            // A run whose guests did not all finish their ping-pong and work measured something else.
            let finished = r.allPoweredOff && !r.lines.contains { $0.contains("FAILED") || $0.contains("still waiting") || $0.contains("HYPERVISOR FAULT") }
            if !finished { progress("64 domains on \(cpus) CPUs did not all finish: no lock row") }
            let share = finished ? waitShare(lines: r.lines) : nil
            progress("run-queue locks, 64 domains on \(cpus) CPUs: \(share.map { String(format: "%.2f", $0) } ?? "-") % of CPU time waiting")
            rows.append(ComparisonRow(metric: "Waiting for run-queue locks, 64 domains on \(cpus) CPUs, % of CPU time",
                                      unit: "%", tern: share.map { [$0] } ?? [], xen: []))
        }
        return rows
    }

    /// `count` domains of the neighbours guest in pairs (d0 with d1, ...): 100 rounds of ping-pong,
    /// then 6 s of timed work from 20 s after boot. The configs are written into `folder`.
    public static func neighbourConfigs(count: Int, in folder: URL) throws -> [URL] {
        try (0 ..< count).map { i in
            let file = folder.appendingPathComponent(String(format: "n%02d.cfg", i))
            try Data("""
                name = "n\(i)"
                kernel = "tern:neighbours"
                memory = 16
                extra = "id=\(i) peer=\(i ^ 1) rounds=100 seconds=6 from=20"

                """.utf8).write(to: file)
            return file
        }
    }

    /// The CPUs' waits for run-queue locks as a percentage of their time, from the lines Tern prints
    /// as it powers off ("pcpuN: idle I ms of T ms, waited W us for run-queue locks (K times)"); nil
    /// when no CPU printed one.
    public static func waitShare(lines: [String]) -> Double? {
        var waited = 0.0, total = 0.0
        for line in lines {
            guard let range = line.range(of: "pcpu"), line[range.upperBound...].contains(": idle ") else { continue }
            let words = line[range.upperBound...].split(separator: " ")
            guard let of = words.firstIndex(of: "of"), of + 1 < words.count, let t = Double(words[of + 1]),
                  let w = words.firstIndex(of: "waited"), w + 1 < words.count, let us = Double(words[w + 1]) else { continue }
            waited += us
            total += t * 1000
        }
        return total > 0 ? waited / total * 100 : nil
    }
}
