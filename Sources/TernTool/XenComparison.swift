import Foundation

/// One metric measured under both hypervisors.
public struct ComparisonRow: Codable, Equatable, Sendable {
    public var metric: String
    public var unit: String
    public var tern: [Double]
    public var xen: [Double]

    public init(metric: String, unit: String, tern: [Double], xen: [Double]) {
        self.metric = metric
        self.unit = unit
        self.tern = tern
        self.xen = xen
    }

    public var ternMedian: Double? { BenchmarkRow.median(tern) }
    public var xenMedian: Double? { BenchmarkRow.median(xen) }
    public var ratio: Double? {
        guard let t = ternMedian, let x = xenMedian, x > 0 else { return nil }
        return t / x
    }
}

/// The benchmark guest (Guests/bench) under Tern and under Xen 4.17 on the same QEMU machine, one CPU,
/// back to back: under `-icount shift=0`, where the guest's counter ticks (16 ns) count instructions,
/// and without icount, for wall-clock time. Xen runs it as a dom0less domU (at 0x40000000, where the
/// guest is linked); Tern as its domain 0, which is not direct-mapped either.
public enum XenComparison {
    /// The architected counter's period on QEMU's virt board (62.5 MHz); with icount, 1 ns = 1 instruction.
    static let nanosecondsPerTick = 16.0

    public struct GuestReport: Equatable, Sendable {
        /// Case name to ticks per operation.
        public var cases: [(String, Double)]
        /// Counter value when the guest printed its first line.
        public var upAtTick: Double?
        /// Seconds from QEMU's start to that first line.
        public var upAtSeconds: Double?
        /// Tern's 'm' key: all RAM and what the hypervisor keeps (KiB). Xen's: its free heaps (kB).
        public var totalKiB: Double?
        public var keptKiB: Double?
        public var xenFreeKiB: Double?

        public static func == (a: GuestReport, b: GuestReport) -> Bool {
            a.cases.map(\.0) == b.cases.map(\.0) && a.cases.map(\.1) == b.cases.map(\.1)
                && a.upAtTick == b.upAtTick && a.upAtSeconds == b.upAtSeconds && a.keptKiB == b.keptKiB
        }
    }

    /// Reads "bench: <case> ticks_x100=<n> iterations=<n>" and "bench: up at tick <n>" from either
    /// hypervisor's console ("(d0) ..." on Tern, "(d1) ..." on Xen).
    public static func parse(lines: [String], times: [TimeInterval]) -> GuestReport {
        var report = GuestReport(cases: [])
        func number(after marker: String, in line: String) -> Double? {
            guard let r = line.range(of: marker) else { return nil }
            return Double(line[r.upperBound...].prefix { $0.isNumber })
        }
        for (i, line) in lines.enumerated() {
            if line.contains("(tern) memory: ") {
                report.totalKiB = number(after: "memory: ", in: line)
                report.keptKiB = number(after: "hypervisor keeps ", in: line)
            }
            if line.contains("(XEN)") && (line.contains("Xen heap: ") || line.contains("Dom heap: ")) {
                report.xenFreeKiB = (report.xenFreeKiB ?? 0)
                    + (number(after: "Xen heap: ", in: line) ?? number(after: "Dom heap: ", in: line) ?? 0)
            }
            guard let range = line.range(of: "bench: ") else { continue }
            let text = line[range.upperBound...]
            if text.hasPrefix("up at tick ") {
                report.upAtTick = Double(text.dropFirst("up at tick ".count))
                report.upAtSeconds = i < times.count ? times[i] : nil
            } else if let field = text.range(of: " ticks_x100=") {
                let name = String(text[..<field.lowerBound])
                let number = text[field.upperBound...].prefix { $0.isNumber }
                if let value = Double(number) { report.cases.append((name, value / 100)) }
            }
        }
        return report
    }

    public static func run(runner: TernRunner, xen: XenBoot, runs: Int, progress: @escaping (String) -> Void) throws -> [ComparisonRow] {
        let config = runner.layout.root.appendingPathComponent("examples/bench.cfg")
        func once(xen x: XenBoot?, icount: Bool) throws -> GuestReport {
            // Once the guest is done, the console's focus goes round to the hypervisor (CTRL-a three
            // times, as often as it takes) and its memory key 'm' is pressed: Tern's and Xen's alike.
            let done = StopFlag()
            let keys: @Sendable (String) -> String? = { line in
                if line.hasSuffix("bench: done") { _ = done.set(); return "\u{1}\u{1}\u{1}" }
                guard done.isSet else { return nil }
                if line.contains("*** console input goes to d") || line.contains("*** Serial input to DOM") { return "\u{1}\u{1}\u{1}" }
                if line.contains("*** console input goes to Tern") || line.contains("*** Serial input to Xen") { return "m" }
                return nil
            }
            var options = RunOptions(smp: 1, timeout: 180, extraQEMUArguments: icount ? ["-icount", "shift=0,sleep=off"] : [],
                                     stopWhen: { $0.contains("hypervisor keeps ") || $0.contains("Dom heap: ") },
                                     typeWhen: keys)
            options.xen = x
            let r = try runner.run(configs: [config], options: options, onLine: { _ in })
            let report = parse(lines: r.lines, times: r.lineTimes)
            if report.cases.isEmpty {
                throw TernToolError.io("the benchmark guest reported nothing under \(x == nil ? "Tern" : "Xen"):\n"
                                       + r.lines.suffix(20).joined(separator: "\n"))
            }
            return report
        }
        var reports: [String: [GuestReport]] = [:]
        for run in 1 ... runs {
            for icount in [true, false] {
                for (side, x) in [("tern", nil), ("xen", xen)] as [(String, XenBoot?)] {
                    let report = try once(xen: x, icount: icount)
                    reports["\(side)-\(icount)", default: []].append(report)
                    progress("run \(run)/\(runs) \(side) \(icount ? "icount" : "wall"): "
                             + report.cases.map { "\($0.0) \(String(format: "%.1f", $0.1))" }.joined(separator: ", "))
                }
            }
        }
        var rows: [ComparisonRow] = []
        let names = reports["tern-true"]?.first?.cases.map(\.0) ?? []
        func values(_ key: String, _ name: String, scale: Double) -> [Double] {
            (reports[key] ?? []).compactMap { r in r.cases.first { $0.0 == name }.map { $0.1 * scale } }
        }
        for name in names {
            rows.append(ComparisonRow(metric: name + ", instructions (icount)", unit: "instructions",
                                      tern: values("tern-true", name, scale: nanosecondsPerTick),
                                      xen: values("xen-true", name, scale: nanosecondsPerTick)))
        }
        for name in names {
            rows.append(ComparisonRow(metric: name + ", wall time", unit: "ns",
                                      tern: values("tern-false", name, scale: nanosecondsPerTick),
                                      xen: values("xen-false", name, scale: nanosecondsPerTick)))
        }
        rows.append(ComparisonRow(metric: "Boot: power-on to the guest's first line, virtual time (icount)", unit: "ms",
                                  tern: (reports["tern-true"] ?? []).compactMap { $0.upAtTick.map { $0 * nanosecondsPerTick / 1e6 } },
                                  xen: (reports["xen-true"] ?? []).compactMap { $0.upAtTick.map { $0 * nanosecondsPerTick / 1e6 } }))
        // Memory a hypervisor keeps once its domain is built: all RAM, less what is free and the
        // domain's 32 MiB. Xen's total is the same machine's, so Tern's count of it serves both.
        let ternRuns = (reports["tern-false"] ?? []) + (reports["tern-true"] ?? [])
        let xenRuns = (reports["xen-false"] ?? []) + (reports["xen-true"] ?? [])
        let total = ternRuns.compactMap(\.totalKiB).first
        rows.append(ComparisonRow(metric: "Footprint: memory the hypervisor keeps after boot", unit: "bytes",
                                  tern: ternRuns.compactMap { $0.keptKiB.map { $0 * 1024 } },
                                  xen: xenRuns.compactMap { r in
                                      guard let total, let free = r.xenFreeKiB else { return nil }
                                      return (total - free - 32 * 1024) * 1024
                                  }))
        rows.append(ComparisonRow(metric: "Boot: QEMU start to the guest's first line, wall time", unit: "s",
                                  tern: (reports["tern-false"] ?? []).compactMap(\.upAtSeconds),
                                  xen: (reports["xen-false"] ?? []).compactMap(\.upAtSeconds)))
        return rows
    }

    public static func markdown(_ rows: [ComparisonRow]) -> String {
        var text = "| metric | Tern | Xen 4.17 | Tern/Xen | spread (Tern; Xen) |\n| --- | --- | --- | --- | --- |\n"
        func show(_ v: Double?, _ unit: String) -> String {
            guard let v else { return "not measured" }
            switch unit {
            case "s": return String(format: "%.2f s", v)
            case "ms": return String(format: "%.1f ms", v)
            case "%": return String(format: "%.2f %%", v)
            case "MiB/s": return String(format: "%.1f MiB/s", v)
            case "bytes": return v >= 10_000_000 ? String(format: "%.1f MB", v / 1e6) : String(format: "%.0f KB", v / 1000)
            // Under icount one counter tick is 16 instructions: both are shown.
            case "instructions": return String(format: "%.0f (%.2f ticks)", v, v / nanosecondsPerTick)
            default: return String(format: "%.0f", v) + (unit == "ns" ? " ns" : "")
            }
        }
        func spread(_ values: [Double]) -> String {
            guard let lo = values.min(), let hi = values.max(), let m = BenchmarkRow.median(values), m > 0 else { return "–" }
            return String(format: "%.0f%%", (hi - lo) / m * 100)
        }
        for row in rows {
            let ratio = row.ratio.map { String(format: "%.2f", $0) } ?? "–"
            text += "| \(row.metric) | \(show(row.ternMedian, row.unit)) | \(show(row.xenMedian, row.unit)) | \(ratio) | "
                + "\(spread(row.tern)); \(spread(row.xen)) |\n"
        }
        return text
    }

    /// A horizontal bar chart of the instruction counts, Tern against Xen, as SVG.
    public static func chart(_ rows: [ComparisonRow]) -> String {
        let bars = rows.filter { $0.unit == "instructions" }
        let width = 760.0, left = 300.0, barHeight = 14.0, gap = 12.0
        let top = 40.0
        let height = top + Double(bars.count) * (2 * barHeight + gap) + 20
        let largest = bars.compactMap { max($0.ternMedian ?? 0, $0.xenMedian ?? 0) }.max() ?? 1
        var svg = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
            <text x="10" y="20" font-size="14" font-weight="bold">Instructions per operation under -icount shift=0 (fewer is better)</text>
            <rect x="\(Int(left))" y="26" width="10" height="10" fill="#2b6cb0"/><text x="\(Int(left) + 14)" y="35">Tern</text>
            <rect x="\(Int(left) + 60)" y="26" width="10" height="10" fill="#c05621"/><text x="\(Int(left) + 74)" y="35">Xen 4.17</text>

            """
        for (i, row) in bars.enumerated() {
            let y = top + Double(i) * (2 * barHeight + gap) + 8
            let name = row.metric.replacingOccurrences(of: ", instructions (icount)", with: "")
            svg += "<text x=\"10\" y=\"\(Int(y + barHeight))\">\(name)</text>\n"
            for (j, (value, color)) in [(row.ternMedian, "#2b6cb0"), (row.xenMedian, "#c05621")].enumerated() {
                guard let value else { continue }
                let w = (width - left - 70) * value / largest
                let yy = y + Double(j) * barHeight
                svg += "<rect x=\"\(Int(left))\" y=\"\(Int(yy))\" width=\"\(Int(w))\" height=\"\(Int(barHeight - 2))\" fill=\"\(color)\"/>"
                svg += "<text x=\"\(Int(left + w + 4))\" y=\"\(Int(yy + barHeight - 3))\">\(Int(value))</text>\n"
            }
        }
        return svg + "</svg>\n"
    }
}
