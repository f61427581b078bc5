import ArgumentParser
import Foundation
import TernTool

struct BuildCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build the hypervisor and guest images into .build-metal/images.")

    @Option(help: "The Tern package folder (default: found from the current folder upwards).")
    var packageRoot: String?

    func run() throws {
        let runner = TernRunner(packageRoot: packageRoot.map { URL(fileURLWithPath: $0) }, log: printOut)
        do {
            let images = try runner.build()
            for (guest, image) in images.guests.sorted(by: { $0.key < $1.key }) {
                printOut("guest-\(guest) image: \(images.size(of: image)) bytes")
            }
        } catch let error as TernToolError {
            printError("tern: \(error)")
            throw ExitCode(ExitStatus.failure)
        }
    }
}
