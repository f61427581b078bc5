import ArgumentParser
import Foundation
import TernTool

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure: Debian's Linux booting to userspace on bare QEMU and under Tern.",
        discussion: "Writes results/linux-boot.json and results/linux-boot.md (git ignores results/).")

    @Option(help: "Runs of each case (they take turns).")
    var runs = 3

    @Option(help: "Folder for the JSON and Markdown results.")
    var results = "results"

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: { printError($0) })
        _ = try runner.build()
        let rows = try LinuxBootBenchmark.run(runner: runner, runs: runs, progress: { printError($0) })
        let date = ISO8601DateFormatter().string(from: Date())
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":").last ?? "").trimmingCharacters(in: .whitespaces) } ?? "unknown CPU"
        let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(model)), QEMU TCG"
        let markdown = LinuxBootBenchmark.markdown(rows, date: date, machine: machine)
        printOut(markdown)
        let folder = URL(fileURLWithPath: results, isDirectory: true)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(rows).write(to: folder.appendingPathComponent("linux-boot.json"))
        try Data(markdown.utf8).write(to: folder.appendingPathComponent("linux-boot.md"))
    }
}
