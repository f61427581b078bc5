import ArgumentParser
import Foundation
import TernCore
import TernTool

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build, then boot the hypervisor with one domain per config on QEMU.",
        discussion: """
            The first config is domain 0. Exit status: 0 when every domain powered off, 1 otherwise, \
            2 for a config error, 3 when the timeout stopped QEMU.
            """)

    @Argument(help: "xl.cfg-style domain configs, in domain-id order.")
    var configs: [String]

    @Option(help: "Seconds before QEMU is stopped.")
    var timeout: Double = 60

    @Option(help: "Physical CPUs of the QEMU machine (at most \(TernLimits.maximumCPUs)).")
    var smp: Int = 2

    @Option(name: .customLong("qemu-arg"), parsing: .unconditionalSingleValue,
            help: "An extra QEMU argument (repeat for several, e.g. --qemu-arg -icount --qemu-arg shift=0).")
    var qemuArguments: [String] = []

    @Flag(help: "Connect this terminal's input to the console (CTRL-a three times switches domains; QEMU's CTRL-] x quits).")
    var interactive = false

    @Option(help: "Keep base.dtb and boot.dtb in this folder instead of a temporary one.")
    var workDir: String?

    @Flag(help: "Build and prepare everything, print the QEMU command line, and stop.")
    var dryRun = false

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    @Option(help: "Boot this Xen 4.17 binary instead of Tern, with the same configs (for comparison; scripts/fetch-linux.sh --xen fetches Debian's as .cache/linux/xen).")
    var xen: String?

    func validate() throws {
        if configs.isEmpty { throw ValidationError("give at least one config file") }
        try validateSMP(smp)
        if timeout <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: printOut)
        var options = RunOptions(smp: smp, timeout: timeout, extraQEMUArguments: qemuArguments,
                                 passStandardInput: interactive, workDirectory: workDir.map { URL(fileURLWithPath: $0) })
        options.xen = xen.map { XenBoot(binary: URL(fileURLWithPath: $0)) }
        let urls = configs.map { URL(fileURLWithPath: $0) }
        let result: RunResult
        do {
            if dryRun {
                // Kept afterwards: the printed command line refers to the boot.dtb in it.
                let work = options.workDirectory ?? FileManager.default.temporaryDirectory
                    .appendingPathComponent("tern-dry-run-\(ProcessInfo.processInfo.processIdentifier)")
                try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
                let prepared = try runner.prepare(configs: urls, options: options, in: work)
                printOut(([prepared.qemu.path] + prepared.arguments).map(shellQuoted).joined(separator: " "))
                return
            }
            result = try runner.run(configs: urls, options: options, onLine: printOut)
        } catch let error as TernToolError {
            printError("tern: \(error)")
            throw ExitCode(error.isConfigError ? ExitStatus.configError : ExitStatus.failure)
        }

        printOut("")
        for line in result.summary { printOut(line) }
        if result.timedOut {
            printError("tern: timed out after \(timeout) s; QEMU was stopped")
            throw ExitCode(ExitStatus.timeout)
        }
        if !result.allPoweredOff {
            let status = result.qemuStatus.map { " (QEMU exit status \($0))" } ?? ""
            printError("tern: not every domain powered off\(status)")
            throw ExitCode(ExitStatus.failure)
        }
    }
}

/// So the printed command can be pasted into a shell.
private func shellQuoted(_ word: String) -> String {
    let plain = word.allSatisfy { $0.isLetter || $0.isNumber || "-_./=,:@+".contains($0) }
    return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// `--smp` of `tern run` and `tern check`: the hypervisor brings up at most TernLimits.maximumCPUs CPUs,
/// so a larger machine is refused rather than partly used.
func validateSMP(_ smp: Int) throws {
    if smp < 1 { throw ValidationError("--smp must be at least 1") }
    if smp > TernLimits.maximumCPUs {
        throw ValidationError("--smp must be 1...\(TernLimits.maximumCPUs): Tern runs on at most \(TernLimits.maximumCPUs) CPUs")
    }
}
