import Foundation

/// One measured quantity, several samples of it.
public struct BenchmarkRow: Codable, Equatable, Sendable {
    public var metric: String
    public var unit: String
    public var samples: [Double]

    public init(metric: String, unit: String, samples: [Double]) {
        self.metric = metric
        self.unit = unit
        self.samples = samples
    }

    public var median: Double? { Self.median(samples) }

    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}

/// Wall-clock time from QEMU's start to the userspace marker of Debian's kernel with the busybox
/// initramfs: on QEMU with no hypervisor (the floor), and under Tern as each kind of domain. The cases
/// take turns, so a slow moment of the host spreads over all of them instead of sinking one.
public enum LinuxBootBenchmark {
    public static let marker = "TERN-LINUX-USERSPACE-UP"

    struct Case {
        var metric: String
        var measure: () throws -> Double?
    }

    public static func run(runner: TernRunner, runs: Int, xen: XenBoot? = nil,
                           progress: @escaping (String) -> Void) throws -> [BenchmarkRow] {
        let root = runner.layout.root
        let cache = root.appendingPathComponent(".cache/linux")
        let image = cache.appendingPathComponent("Image"), initrd = cache.appendingPathComponent("initrd.cpio.gz")
        guard FileManager.default.fileExists(atPath: image.path) else {
            throw TernToolError.io("no \(image.path): run scripts/fetch-linux.sh (make linux) first")
        }
        let qemu = try HostTools.qemu()
        func example(_ name: String) -> URL { root.appendingPathComponent("examples/\(name).cfg") }

        func bare(vcpus: Int) throws -> Double? {
            let arguments = ["-M", "virt", "-cpu", "cortex-a57", "-smp", String(vcpus), "-m", "1024", "-nographic",
                             "-nic", "none", "-kernel", image.path, "-initrd", initrd.path,
                             "-append", "console=ttyAMA0 rdinit=/init"]
            let r = try Subprocess.stream(qemu, arguments, passStandardInput: false, timeout: 300,
                                          stopWhen: { $0 == marker }, onLine: { _ in })
            return r.lines.firstIndex(of: marker).map { r.lineTimes[$0] }
        }
        func tern(_ configs: [String], domain: Int) throws -> Double? {
            let line = "(d\(domain)) \(marker)"
            let r = try runner.run(configs: configs.map(example), timeout: 300, stopWhen: { $0 == line })
            return r.lines.firstIndex(of: line).map { r.lineTimes[$0] }
        }

        func onXen(_ configs: [String]) throws -> Double? {
            guard let xen else { return nil }
            var options = RunOptions(timeout: 300, stopWhen: { $0.hasSuffix(marker) })
            options.xen = xen
            let r = try runner.run(configs: configs.map(example), options: options, onLine: { _ in })
            return r.lines.firstIndex { $0.hasSuffix(marker) }.map { r.lineTimes[$0] }
        }

        var cases = [
            Case(metric: "Linux directly on QEMU, 1 vCPU (no hypervisor)") { try bare(vcpus: 1) },
            Case(metric: "Linux directly on QEMU, 2 vCPUs (no hypervisor)") { try bare(vcpus: 2) },
            Case(metric: "Tern: Linux plain domU, 1 vCPU (beside a Tern dom0)") { try tern(["dom0", "linux"], domain: 1) },
            Case(metric: "Tern: Linux Xen-aware domU, 2 vCPUs (beside a Tern dom0)") { try tern(["dom0", "linux-pv"], domain: 1) },
            Case(metric: "Tern: Linux dom0, 2 vCPUs") { try tern(["linux-dom0"], domain: 0) },
        ]
        if xen != nil {
            cases.append(Case(metric: "Xen 4.17: Linux dom0, 2 vCPUs (same kernel, initramfs, dom0_mem)") { try onXen(["linux-dom0"]) })
        }
        var samples = [[Double]](repeating: [], count: cases.count)
        for run in 1 ... runs {
            for (i, c) in cases.enumerated() {
                if let seconds = try c.measure() {
                    samples[i].append(seconds)
                    progress("run \(run)/\(runs): \(c.metric): \(String(format: "%.2f", seconds)) s")
                } else {
                    progress("run \(run)/\(runs): \(c.metric): no marker")
                }
            }
        }
        return zip(cases, samples).map { BenchmarkRow(metric: "QEMU start to userspace marker: " + $0.metric, unit: "s", samples: $1) }
    }

    public static func markdown(_ rows: [BenchmarkRow], date: String, machine: String) -> String {
        var text = "Measured \(date) on \(machine); wall seconds, median of the runs (min–max).\n\n"
        text += "| boot | median | min–max | runs |\n| --- | --- | --- | --- |\n"
        for row in rows {
            let name = row.metric.replacingOccurrences(of: "QEMU start to userspace marker: ", with: "")
            guard let median = row.median else {
                text += "| \(name) | — | — | 0 |\n"
                continue
            }
            text += String(format: "| %@ | %.2f s | %.2f–%.2f | %d |\n", name, median,
                           row.samples.min()!, row.samples.max()!, row.samples.count)
        }
        return text
    }
}
