import ArgumentParser
import Foundation
import TernTool

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check domain config files without building or running anything.")

    @Argument(help: "xl.cfg-style domain configs, in domain-id order.")
    var configs: [String]

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    func validate() throws {
        if configs.isEmpty { throw ValidationError("give at least one config file") }
    }

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: printOut)
        do {
            let plan = try runner.check(configs: configs.map { URL(fileURLWithPath: $0) })
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
