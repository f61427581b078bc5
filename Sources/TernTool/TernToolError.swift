import TernCore

/// Everything the toolstack can fail with. Each case reads as a complete sentence in `description`,
/// because the CLI prints it as is and tests compare against it.
public enum TernToolError: Error, CustomStringConvertible, Sendable {
    /// A problem the person who wrote a config file has to fix (syntax, values, missing files, clashes
    /// between configs). Reported before anything is built or started.
    case config(ConfigError)
    /// A request that is no config's, such as `--smp`, beyond what Tern supports (TernLimits). Refused
    /// before anything is built or started.
    case limit(String)
    /// No folder holding Package.swift and Sources/Hypervisor at or above `start`.
    case packageRootNotFound(start: String)
    /// A program the toolstack runs is not installed where it looked.
    case toolNotFound(name: String, searched: [String])
    /// `swift build` of one bare-metal product failed; `output` is the end of its output.
    case buildFailed(product: String, status: Int32, output: String)
    /// Another helper program (llvm-objcopy, QEMU dumping its device tree) failed.
    case commandFailed(command: String, status: Int32, output: String)
    /// A built image that a domain needs is not where the build should have put it.
    case missingImage(path: String)
    /// QEMU's device tree could not be read, or the boot tree could not be made from it.
    case deviceTree(String)
    /// Reading or writing a file, or starting a process, failed.
    case io(String)

    public var isConfigError: Bool {
        if case .config = self { return true }
        return false
    }

    public var description: String {
        switch self {
        case .config(let error):
            return error.description
        case .limit(let message):
            return message
        case .packageRootNotFound(let start):
            return "cannot find the Tern package (a folder with Package.swift and Sources/Hypervisor) at or above \(start)"
        case .toolNotFound(let name, let searched):
            return "cannot find \(name) (looked in: \(searched.joined(separator: ", ")))"
        case .buildFailed(let product, let status, let output):
            return "building \(product) failed (swift build exited with \(status)):\n\(output)"
        case .commandFailed(let command, let status, let output):
            return "\(command) failed (exit status \(status)):\n\(output)"
        case .missingImage(let path):
            return "image \(path) does not exist; was it built?"
        case .deviceTree(let message):
            return "boot device tree: \(message)"
        case .io(let message):
            return message
        }
    }
}
