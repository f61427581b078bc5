import ArgumentParser
import Foundation
import TernCore
import TernTool

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check domain config files without building or running anything.")

    @Argument(help: "xl.cfg-style domain configs, in domain-id order.")
    var configs: [String]

    @Option(help: "Check against a machine with this many CPUs, as tern run --smp (default: any machine Tern runs on, up to \(TernLimits.maximumCPUs) CPUs).")
    var smp: Int?

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    func validate() throws {
        if configs.isEmpty { throw ValidationError("give at least one config file") }
        if let smp { try validateSMP(smp) }
    }

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: printOut)
        do {
            let plan = try runner.check(configs: configs.map { URL(fileURLWithPath: $0) }, machineCPUs: smp)
            for warning in plan.warnings { printError("warning: \(warning)") }
            for domain in plan.domains {
                let config = domain.config
                printOut("d\(domain.id) (\(config.name)): \(config.memoryMiB) MiB, \(config.vcpus) vcpu(s), ok")
            }
        } catch {
            printError("tern: \(error)")
            throw ExitCode(error.isConfigError ? ExitStatus.configError : ExitStatus.failure)
        }
    }
}
