import Foundation

/// Linux's split drivers timed inside the guests, on Tern and on Xen 4.17 with the same control domain
/// (scripts/fetch-toolstack.sh's initramfs) and the same domUs: a PV disk backed by a file in dom0,
/// with direct I/O (the guest's tern-disk: 64 MiB written and read back in 1 MiB requests, then 5 s of
/// 4 KiB reads at random offsets), and a PV network on dom0's bridge (16 MiB over HTTP from a domU to
/// dom0 and to another domU, and dom0's ping round trip to a domU).
public enum SplitDriverBenchmark {
    static let commands = [
        "dd if=/dev/zero of=/var/lib/tern/bench.img bs=1M count=80",
        "xl create /etc/xen/disk-bench.cfg", "tern-wait disk-bench TERN-BENCH:.disk.done 300", "tern-gone disk-bench",
        "grep -h TERN-BENCH /var/log/xen/console/guest-disk-bench.log",
        "xl create /etc/xen/net-serve.cfg", "tern-wait net-serve TERN-NET:.serving 120",
        "ping -c 1 10.0.0.2", "ping -c 5 10.0.0.2", "tern-fetch http://10.0.0.2/zeros",
        "xl create /etc/xen/net-fetch.cfg", "tern-wait net-fetch TERN-BENCH:.net 120",
        "grep -h TERN-BENCH /var/log/xen/console/guest-net-fetch.log",
        "xl destroy net-fetch", "xl destroy net-serve",
    ]
    /// Rates in MiB/s, where more is better (a Tern/Xen ratio above 1 favours Tern, unlike the other
    /// rows); the round trip in ms.
    public static let metrics: [(String, String)] = [
        ("PV disk: sequential write through blkfront, 64 MiB, O_DIRECT, 1 MiB requests (more is better)", "MiB/s"),
        ("PV disk: sequential read through blkfront, 64 MiB, O_DIRECT, 1 MiB requests (more is better)", "MiB/s"),
        ("PV disk: 4 KiB random reads, O_DIRECT, one at a time (more is better)", "IOPS"),
        ("PV network: TCP from a domU to dom0 (HTTP, 16 MiB; more is better)", "MiB/s"),
        ("PV network: TCP from a domU to another domU (HTTP, 16 MiB; more is better)", "MiB/s"),
        ("PV network: ping round trip, dom0 to a domU (after one to learn its address)", "ms"),
    ]

    public static func run(runner: TernRunner, xen: XenBoot?, runs: Int, progress: @escaping (String) -> Void) throws -> [ComparisonRow] {
        let (tern, onXen) = try ToolstackBenchmark.sample("split-drivers", commands: commands, units: metrics.map(\.1),
                                                          runner: runner, xen: xen, runs: runs, timeout: 600,
                                                          progress: progress) { lines, _ in measurements(lines) }
        return metrics.indices.map { ComparisonRow(metric: metrics[$0].0, unit: metrics[$0].1, tern: tern[$0], xen: onXen[$0]) }
    }

    /// The six values (as `metrics` orders them) from a run's lines, with or without Tern's "(d0) "
    /// prefix; nil where the line is missing or says nothing measurable.
    public static func measurements(_ lines: [String]) -> [Double?] {
        // The last such line: dom0 pings once to learn the domU's address before the timed pings.
        func words(after marker: String) -> [String]? {
            guard let line = lines.last(where: { $0.contains(marker) }), let r = line.range(of: marker) else { return nil }
            return line[r.upperBound...].split(separator: " ").map(String.init)
        }
        /// MiB/s from "<bytes> bytes in <time> <cs|us>".
        func rate(_ w: [String]?) -> Double? {
            guard let w, w.count >= 4, let bytes = Double(w[0]), bytes > 0, let time = Double(w[3]), time > 0,
                  let perSecond = ["cs": 100.0, "us": 1_000_000.0][w.count > 4 ? w[4] : ""] else { return nil }
            return bytes / 1_048_576 / (time / perSecond)
        }
        let write = rate(words(after: "TERN-BENCH: disk write "))
        let read = rate(words(after: "TERN-BENCH: disk read "))
        let iops = words(after: "TERN-BENCH: disk iops ")?.first.flatMap { Double($0) }.flatMap { $0 > 0 ? $0 : nil }
        // busybox ping: "round-trip min/avg/max = 1.2/3.4/5.6 ms"
        let ping = words(after: "round-trip min/avg/max = ")?.first?.split(separator: "/").dropFirst().first.flatMap { Double($0) }
        return [write, read, iops, rate(words(after: "TERN-BENCH: fetched ")), rate(words(after: "TERN-BENCH: net fetched ")), ping]
    }
}
