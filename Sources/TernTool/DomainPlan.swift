import Foundation
import TernCore

/// A file a domain boots from: one of the package's own guests ("tern:hello" in a config), or a file
/// named relative to the config that names it.
public enum ImageSource: Equatable, Sendable {
    case builtIn(String)
    case file(URL)

    public static let builtInPrefix = "tern:"
}

/// One domain to create: its configuration, as read, and where its files are.
public struct PlannedDomain: Sendable {
    /// The order of the configs on the command line: the first is domain 0, the control domain.
    public var id: Int
    public var config: DomainConfig
    public var configFile: URL
    public var kernel: ImageSource
    public var ramdisk: ImageSource?

    public init(id: Int, config: DomainConfig, configFile: URL, kernel: ImageSource, ramdisk: ImageSource? = nil) {
        self.id = id
        self.config = config
        self.configFile = configFile
        self.kernel = kernel
        self.ramdisk = ramdisk
    }
}

/// The domains a set of config files describe, checked as a whole: every file parses, names are unique,
/// every file a config names exists. Nothing is built or started before this succeeds.
public struct DomainPlan: Sendable {
    public var domains: [PlannedDomain]
    /// Already prefixed with file and line, ready to print.
    public var warnings: [String]

    /// Tern passes affinity as one 32-bit cell (tern,affinity), so higher CPU numbers cannot be expressed.
    public static let affinityBits = 32

    /// `guestNames` are the built-in guests "tern:" may name.
    public static func load(configs: [URL], guestNames: [String]) throws(TernToolError) -> DomainPlan {
        var domains: [PlannedDomain] = []
        var warnings: [String] = []
        var names: [String: String] = [:]
        for (id, url) in configs.enumerated() {
            let shown = displayName(url)
            let text: String
            do {
                text = try String(contentsOf: url, encoding: .utf8)
            } catch {
                throw .config(ConfigError(file: shown, line: 0, field: nil, message: "cannot read the file: \(error.localizedDescription)"))
            }
            let parsed: (config: DomainConfig, warnings: [String])
            do {
                parsed = try XLConfigParser.parse(text, file: shown)
            } catch {
                throw .config(error)
            }
            let config = parsed.config
            warnings += parsed.warnings
            func fail(_ field: String, _ message: String) -> TernToolError {
                .config(ConfigError(file: shown, line: keyLine(field, in: text), field: field, message: message))
            }

            if let first = names[config.name] {
                throw fail("name", "domain name \"\(config.name)\" is already used by \(first)")
            }
            names[config.name] = shown

            let folder = url.deletingLastPathComponent()
            let kernel = try resolve(config.kernel, relativeTo: folder, guestNames: guestNames)
                .get(orThrow: { fail("kernel", $0) })
            let ramdisk = try config.ramdisk.map { path throws(TernToolError) in
                try resolve(path, relativeTo: folder, guestNames: guestNames).get(orThrow: { fail("ramdisk", $0) })
            }
            if let high = config.cpus?.last, high >= affinityBits {
                throw fail("cpus", "CPU \(high) is beyond what Tern can pin to (0...\(affinityBits - 1))")
            }
            domains.append(PlannedDomain(id: id, config: config, configFile: url, kernel: kernel, ramdisk: ramdisk))
        }
        return DomainPlan(domains: domains, warnings: warnings)
    }

    /// The built-in guests the plan uses, each once, in first-use order.
    public var builtInGuests: [String] {
        var seen: [String] = []
        for domain in domains {
            for case .builtIn(let guest)? in [domain.kernel, domain.ramdisk] where !seen.contains(guest) {
                seen.append(guest)
            }
        }
        return seen
    }

    /// Paths as the user wrote them read best in messages; URLs made from absolute paths have no
    /// relative form and show in full.
    static func displayName(_ url: URL) -> String {
        url.relativePath.isEmpty ? url.path : url.relativePath
    }

    private static func resolve(_ reference: String, relativeTo folder: URL,
                                guestNames: [String]) -> Result<ImageSource, Message> {
        if reference.hasPrefix(ImageSource.builtInPrefix) {
            let guest = String(reference.dropFirst(ImageSource.builtInPrefix.count))
            guard guestNames.contains(guest) else {
                let known = guestNames.map { ImageSource.builtInPrefix + $0 }.joined(separator: ", ")
                return .failure(Message("\"\(reference)\" is not a built-in guest (there are: \(known))"))
            }
            return .success(.builtIn(guest))
        }
        let file = reference.hasPrefix("/")
            ? URL(fileURLWithPath: reference)
            : folder.appendingPathComponent(reference)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file.path, isDirectory: &isDirectory) else {
            return .failure(Message("file \(file.standardizedFileURL.path) does not exist"))
        }
        guard !isDirectory.boolValue else {
            return .failure(Message("\(file.standardizedFileURL.path) is a folder, not a file"))
        }
        return .success(.file(file.standardizedFileURL))
    }

    struct Message: Error {
        var text: String
        init(_ text: String) { self.text = text }
    }

    /// The parser reports problems in values only; problems found later (a missing file, a clashing name)
    /// are located by finding the line that sets the key. 0 when it is not on a line of its own, e.g.
    /// after a ';'.
    static func keyLine(_ key: String, in text: String) -> Int {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            guard trimmed.hasPrefix(key) else { continue }
            let rest = trimmed.dropFirst(key.count).drop { $0 == " " || $0 == "\t" }
            if rest.hasPrefix("=") { return index + 1 }
        }
        return 0
    }
}

private extension Result where Failure == DomainPlan.Message {
    func get(orThrow makeError: (String) -> TernToolError) throws(TernToolError) -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let message): throw makeError(message.text)
        }
    }
}
