import Foundation

/// Xen's own toolstack at work, timed from the host in wall seconds, on Tern and on Xen 4.17 with the
/// same control domain (Debian's kernel with the xen-utils-4.17 initramfs of scripts/fetch-toolstack.sh)
/// and the same domU: dom0's boot until its toolstack is up (QEMU's start to the first command),
/// `xl create` until it returns (libxl has built the domain) and until the domU prints its userspace marker (its console as xenconsoled logs it in dom0),
/// and `xl destroy` until dom0 is alone and the free memory has stopped changing (tern-settle).
public enum ToolstackBenchmark {
    static let commands = ["tern-settle", "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-USERSPACE-UP",
                           "xl destroy domu1", "tern-settle"]
    public static let metrics = ["Toolstack: dom0 boot until xenstored, xenconsoled and init-dom0less are up",
                                 "Toolstack: xl create until it returns (the domain built and running)",
                                 "Toolstack: xl create until the domU's userspace marker",
                                 "Toolstack: xl destroy until dom0 is alone and the memory is back"]

    public static func run(runner: TernRunner, xen: XenBoot?, runs: Int, progress: @escaping (String) -> Void) throws -> [ComparisonRow] {
        let (tern, onXen) = try sample("toolstack", commands: commands, units: Array(repeating: "s", count: metrics.count),
                                       runner: runner, xen: xen, runs: runs, timeout: 400, progress: progress) { lines, times in
            phases(lines, times) ?? Array(repeating: nil, count: metrics.count)
        }
        return metrics.indices.map { ComparisonRow(metric: metrics[$0], unit: "s", tern: tern[$0], xen: onXen[$0]) }
    }

    /// Boots a control domain whose init runs `commands` (controlDomainConfig), `runs` times on Tern and,
    /// by turns, on Xen when given, and gathers what `measure` reads from each run's lines and their
    /// times: a value per row (as `units` lists them), nil where the run gave none. `name` starts each
    /// progress line. Returns the samples per row on Tern and on Xen.
    static func sample(_ name: String, commands: [String], units: [String], runner: TernRunner, xen: XenBoot?, runs: Int,
                       timeout: TimeInterval, progress: @escaping (String) -> Void,
                       measure: ([String], [TimeInterval]) -> [Double?]) throws -> (tern: [[Double]], xen: [[Double]]) {
        let cache = runner.layout.root.appendingPathComponent(".cache/linux")
        guard FileManager.default.fileExists(atPath: cache.appendingPathComponent("initrd-xl.cpio.gz").path) else {
            throw TernToolError.io("no \(cache.path)/initrd-xl.cpio.gz: run scripts/fetch-toolstack.sh (make linux) first")
        }
        let config = FileManager.default.temporaryDirectory.appendingPathComponent("tern-bench-\(name)-\(UUID().uuidString).cfg")
        try controlDomainConfig(running: ternRun(commands), linuxCache: cache).write(to: config, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: config) }

        var tern = [[Double]](repeating: [], count: units.count)
        var onXen = tern
        for run in 1 ... runs {
            for side in xen == nil ? [nil] : [nil, xen] {
                var options = RunOptions(timeout: timeout, stopWhen: { $0.hasSuffix("TERN-DOM0-DONE") })
                options.xen = side
                let r = try runner.run(configs: [config], options: options, onLine: { _ in })
                let label = "\(name) run \(run) (\(side == nil ? "tern" : "xen"))"
                let values = measure(r.lines, r.lineTimes)
                for (i, v) in values.enumerated() {
                    guard let v else { continue }
                    if side == nil { tern[i].append(v) } else { onXen[i].append(v) }
                }
                if values.contains(where: { $0 == nil }) {
                    progress("\(label): some rows missing (a command failed or did not finish)\n"
                             + r.lines.filter { !$0.contains("] ") }.suffix(20).joined(separator: "\n"))
                }
                progress("\(label): " + zip(values, units).map { "\($0.0.map { String(format: "%.2f", $0) } ?? "-") \($0.1)" }
                    .joined(separator: ", "))
            }
        }
        return (tern, onXen)
    }

    /// A control domain like examples/xl-dom0.cfg (Debian's kernel with the toolstack's initramfs from
    /// `linuxCache`) whose init runs `commands`, spelled as tern.run wants them (ternRun).
    public static func controlDomainConfig(running commands: String, linuxCache: URL) -> String {
        """
        name = "xl-dom0"
        kernel = "\(linuxCache.path)/Image"
        ramdisk = "\(linuxCache.path)/initrd-xl.cpio.gz"
        memory = 512
        vcpus = 2
        extra = "console=hvc0 earlycon=xenboot rdinit=/init tern.run=\(commands)"
        """
    }

    /// Commands as typed, in tern.run's spelling: '+' between them, '_' for each space.
    public static func ternRun(_ commands: [String]) -> String {
        commands.map { $0.replacingOccurrences(of: " ", with: "_") }.joined(separator: "+")
    }

    /// The four spans from a run's timed lines (dom0's lines end the same way on Tern, where they carry
    /// a "(d0) " prefix, and on Xen, where they do not); nil unless every command succeeded.
    public static func phases(_ lines: [String], _ times: [TimeInterval]) -> [Double]? {
        var runs: [(command: String, at: TimeInterval)] = []
        var ends: [(status: String, at: TimeInterval)] = []
        for (line, t) in zip(lines, times) {
            if let r = line.range(of: "TERN-DOM0-RUN: ") { runs.append((String(line[r.upperBound...]), t)) }
            if let r = line.range(of: "TERN-DOM0-STATUS: ") { ends.append((String(line[r.upperBound...]), t)) }
        }
        guard runs.map(\.command) == commands, ends.count == commands.count, ends.allSatisfy({ $0.status == "0" }) else {
            return nil
        }
        return [runs[0].at, ends[1].at - runs[1].at, ends[2].at - runs[1].at, ends[4].at - runs[3].at]
    }
}
