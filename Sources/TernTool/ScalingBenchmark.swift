import Foundation

/// What a vCPU switch and a wake-up cost as the number of domains on one CPU grows (2, 16, 64), under
/// `-icount shift=0` (instructions, deterministic, so one run each): N domains of the benchmark guest,
/// one of them measuring. The switch is a round of SCHEDOP_yield through all N; the wake-up is the time
/// from a domain's timer being due to the domain running again, with the N - 1 others asleep on timers
/// of their own. Flat rows mean nothing on those paths walks every domain.
public enum ScalingBenchmark {
    public static let domainCounts = [2, 16, 64]
    /// The most dom0less domains Xen 4.17 can start here: it keeps 32 boot modules (MAX_MODULES), two
    /// of them its own image and the device tree, and each domain brings a kernel (a 31st domain
    /// stops its boot: "Could not set up domain domU30").
    static let xenDomainLimit = 30

    public static func run(runner: TernRunner, xen: XenBoot?, progress: @escaping (String) -> Void) throws -> [ComparisonRow] {
        var rows: [ComparisonRow] = []
        for (lead, other, metric) in [("ring-lead", "ring", "vCPU switch (SCHEDOP_yield round) among"),
                                      ("sleep-lead", "sleeper", "Wake-up (timer due to guest running) among")] {
            for count in domainCounts {
                let tern = try measure(runner: runner, xen: nil, lead: lead, other: other, domains: count, progress: progress)
                let onXen = count > xenDomainLimit ? nil
                    : try xen.flatMap { try measure(runner: runner, xen: $0, lead: lead, other: other, domains: count, progress: progress) }
                progress("scaling \(lead) \(count) domains: tern \(tern.map { String(format: "%.0f", $0) } ?? "-")"
                         + ", xen \(onXen.map { String(format: "%.0f", $0) } ?? "-") instructions")
                rows.append(ComparisonRow(metric: "\(metric) \(count) domains on 1 CPU, instructions (icount)",
                                          unit: "instructions", tern: tern.map { [$0] } ?? [], xen: onXen.map { [$0] } ?? []))
            }
        }
        return rows
    }

    /// Instructions per operation as the leading domain reports it, or nil when it reported nothing.
    static func measure(runner: TernRunner, xen: XenBoot?, lead: String, other: String, domains: Int,
                        progress: (String) -> Void) throws -> Double? {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-scaling-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let configs = try (0 ..< domains).map { i in
            let role = i == 0 ? lead : other
            let text = """
                name = "\(role)\(i)"
                kernel = "tern:bench"
                memory = 16
                extra = "role=\(role) domains=\(domains) iterations=\(lead == "ring-lead" ? 256 : 64)"

                """
            let file = folder.appendingPathComponent(String(format: "d%03d.cfg", i))
            try Data(text.utf8).write(to: file)
            return file
        }
        var options = RunOptions(smp: 1, timeout: 300, extraQEMUArguments: ["-icount", "shift=0,sleep=off"],
                                 stopWhen: { $0.contains("bench: done") })
        options.xen = xen
        let r = try runner.run(configs: configs, options: options, onLine: { _ in })
        guard let ticks = XenComparison.parse(lines: r.lines, times: r.lineTimes).cases.first?.1 else {
            progress("\(xen == nil ? "Tern" : "Xen") reported nothing for \(lead) among \(domains) domains; its last lines:\n"
                     + r.lines.filter { !$0.isEmpty }.suffix(8).joined(separator: "\n"))
            return nil
        }
        return ticks * XenComparison.nanosecondsPerTick
    }
}
