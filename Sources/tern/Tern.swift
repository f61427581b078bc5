import ArgumentParser
import Foundation

@main
struct Tern: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tern",
        abstract: "Build and run the Tern hypervisor and its domains on QEMU.",
        subcommands: [BuildCommand.self, RunCommand.self, CheckCommand.self, BenchCommand.self, FuzzCommand.self])
}

/// Exit statuses, fixed so scripts and tests can tell the outcomes apart.
enum ExitStatus {
    static let failure: Int32 = 1
    static let configError: Int32 = 2
    static let timeout: Int32 = 3
}

/// Written straight to the file descriptor: console lines must appear as they come, and stdio would
/// hold them back while stdout is a pipe.
func printOut(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
