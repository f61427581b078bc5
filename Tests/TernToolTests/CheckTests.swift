import Foundation
import Testing
import TernCore
@testable import TernTool

/// The built `tern` executable, if this test run built one next to the test bundle.
private let ternExecutable: URL? = {
    var folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = folder.appendingPathComponent("tern")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        folder = folder.deletingLastPathComponent()
    }
    return nil
}()

@Suite struct CheckTests {
    @Test func brokenExampleFailsWithFileLineAndField() throws {
        let runner = TernRunner(packageRoot: layout.root, log: { _ in })
        let broken = URL(fileURLWithPath: "examples/broken.cfg", relativeTo: layout.root)
        let error = try #require(configError { _ = try runner.check(configs: [broken]) })
        #expect(error.file == "examples/broken.cfg")
        #expect(error.field == "memory")
        #expect(error.line > 0)
        #expect(error.description == "examples/broken.cfg:\(error.line): memory: \(error.message)")
    }

    @Test(.enabled(if: ternExecutable != nil)) func ternCheckExitsWith2OnTheBrokenExample() throws {
        let result = try Subprocess.capture(ternExecutable!, ["check", "examples/hello.cfg", "examples/broken.cfg"],
                                            in: layout.root)
        #expect(result.status == 2)
        #expect(result.output.contains("examples/broken.cfg:5: memory: "), "\(result.output)")
    }

    @Test(.enabled(if: ternExecutable != nil)) func ternCheckAcceptsTheGoodExamples() throws {
        let result = try Subprocess.capture(ternExecutable!, ["check", "examples/dom0.cfg", "examples/hello.cfg"],
                                            in: layout.root)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("d0 (control)"))
        #expect(result.output.contains("d1 (hello)"))
    }

    @Test(.enabled(if: ternExecutable != nil)) func ternCheckRefusesMoreCPUsThanTernRunsOn() throws {
        let most = TernLimits.maximumCPUs
        let result = try Subprocess.capture(ternExecutable!, ["check", "--smp", "\(most + 1)", "examples/hello.cfg"], in: layout.root)
        #expect(result.status != 0)
        #expect(result.output.contains("--smp must be 1...\(most): Tern runs on at most \(most) CPUs"), "\(result.output)")
    }

    @Test(.enabled(if: ternExecutable != nil)) func ternCheckWithSmpRefusesAffinityToACPUTheMachineLacks() throws {
        let result = try Subprocess.capture(ternExecutable!, ["check", "--smp", "1", "examples/capped.cfg"], in: layout.root)
        #expect(result.status == 2)
        #expect(result.output.contains("examples/capped.cfg:6: cpus: CPU 1 is not on the machine, which has 1 CPU (0, --smp 1)"),
                "\(result.output)")
        let two = try Subprocess.capture(ternExecutable!, ["check", "--smp", "2", "examples/capped.cfg"], in: layout.root)
        #expect(two.status == 0, "\(two.output)")
    }
}
