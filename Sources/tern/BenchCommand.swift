import ArgumentParser
import Foundation
import TernTool

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Tern against Xen 4.17 (same guest, same QEMU) and Linux boot times.",
        discussion: "Writes results/bench.{json,md,svg} and results/linux-boot.json (git ignores results/).")

    @Option(help: "Runs of each case (they take turns).")
    var runs = 3

    @Option(help: "Folder for the JSON and Markdown results.")
    var results = "results"

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    @Flag(help: "Skip the side-by-side runs with Xen 4.17.")
    var noXen = false

    @Flag(help: "Only the rows of switch and wake-up cost at 2, 16 and 64 domains and the run-queue lock waits with 64 domains (printed, not written).")
    var scalingOnly = false

    @Flag(help: "Only the rows of Xen's toolstack at work: dom0's boot, xl create, xl destroy (printed, not written).")
    var toolstackOnly = false

    @Flag(help: "Only the rows of the PV disk and network (printed, not written).")
    var splitDriversOnly = false

    @Flag(help: "Only the resource exhaustion table and a fuzzing run's report (printed, not written).")
    var securityOnly = false

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: { printError($0) })
        let images = try runner.build()
        let xenBinary = runner.layout.root.appendingPathComponent(".cache/linux/xen")
        let xen = !noXen && FileManager.default.fileExists(atPath: xenBinary.path) ? XenBoot(binary: xenBinary) : nil
        if xen == nil && !noXen { printError("no .cache/linux/xen (scripts/fetch-linux.sh --xen): Xen is left out") }

        if toolstackOnly {
            let rows = try ToolstackBenchmark.run(runner: runner, xen: xen, runs: runs, progress: { printError($0) })
            printOut(XenComparison.markdown(rows))
            return
        }
        if splitDriversOnly {
            let rows = try SplitDriverBenchmark.run(runner: runner, xen: xen, runs: runs, progress: { printError($0) })
            printOut(XenComparison.markdown(rows))
            return
        }
        if securityOnly {
            printOut(try securityMarkdown(runner))
            return
        }
        if scalingOnly {
            let rows = try ScalingBenchmark.run(runner: runner, xen: xen, progress: { printError($0) })
                + LockContentionBenchmark.run(runner: runner, progress: { printError($0) })
            printOut(XenComparison.markdown(rows))
            return
        }
        var comparison: [ComparisonRow] = []
        if let xen {
            comparison = try XenComparison.run(runner: runner, xen: xen, runs: runs, progress: { printError($0) })
        }
        comparison.append(ComparisonRow(metric: "Footprint: hypervisor image", unit: "bytes",
                                        tern: [Double(images.hypervisorSize)],
                                        xen: xen.flatMap { fileSize($0.binary) }.map { [Double($0)] } ?? []))
        comparison.append(try ReclaimBenchmark.run(runner: runner, runs: runs, progress: { printError($0) }))
        comparison += try ScalingBenchmark.run(runner: runner, xen: xen, progress: { printError($0) })
        comparison += try LockContentionBenchmark.run(runner: runner, progress: { printError($0) })
        comparison += try ToolstackBenchmark.run(runner: runner, xen: xen, runs: runs, progress: { printError($0) })
        comparison += try SplitDriverBenchmark.run(runner: runner, xen: xen, runs: runs, progress: { printError($0) })
        let boots = try LinuxBootBenchmark.run(runner: runner, runs: runs, xen: xen, progress: { printError($0) })

        let date = ISO8601DateFormatter().string(from: Date())
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(model)), QEMU TCG"
        var markdown = "## Tern and Xen 4.17, the same guest on the same QEMU (median of \(runs) runs)\n\n"
            + "Measured \(date) on \(machine).\n\n" + XenComparison.markdown(comparison)
        markdown += "\n## Linux booting to userspace\n\n" + LinuxBootBenchmark.markdown(boots, date: date, machine: machine)
        markdown += "\n" + (try securityMarkdown(runner))
        printOut(markdown)
        let folder = URL(fileURLWithPath: results, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(comparison).write(to: folder.appendingPathComponent("bench.json"))
        try encoder.encode(boots).write(to: folder.appendingPathComponent("linux-boot.json"))
        try Data(markdown.utf8).write(to: folder.appendingPathComponent("bench.md"))
        try Data(XenComparison.chart(comparison).utf8).write(to: folder.appendingPathComponent("bench.svg"))
    }

    /// Resource exhaustion (dom0's round trips with the canary while a domU holds everything it can
    /// get) and a fuzzing run's report (what was reached, faults and anomalies: both must be 0).
    func securityMarkdown(_ runner: TernRunner) throws -> String {
        printError("bench: resource exhaustion")
        let (exhaustion, _) = try ExhaustionRun.run(runner: runner)
        let plan = FuzzPlan(seed: UInt64(Date().timeIntervalSince1970) % 1_000_000_007, ops: 500_000, smp: 2,
                            domains: 2, vcpus: 2, ends: 1)
        printError("bench: fuzzing (\(plan.command))")
        let (fuzz, _) = try FuzzRun.run(plan, runner: runner, onLine: { _ in })
        return "## Resource exhaustion: dom0's event-channel round trips with the canary, wall time\n\n"
            + exhaustion.markdown
            + "\n## Fuzzing: `\(plan.command)`\n\n"
            + (fuzz.report + fuzz.failures.map { "FAILED: \($0)" }).map { "- \($0)" }.joined(separator: "\n") + "\n"
    }
}
