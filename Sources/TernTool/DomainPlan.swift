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
    /// The line of `configFile` that sets "memory" (0: none does), where a plan too large for the
    /// machine is reported.
    var memoryLine: Int

    public init(id: Int, config: DomainConfig, configFile: URL, kernel: ImageSource, ramdisk: ImageSource? = nil) {
        self.id = id
        self.config = config
        self.configFile = configFile
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.memoryLine = 0
    }
}

/// The domains a set of config files describe, checked as a whole: every file parses, names are unique,
/// every file a config names exists, and together they stay within Tern's limits (TernLimits: domains,
/// vCPUs, the machine's CPUs, memory that fits in the largest machine). Nothing is built or started
/// before this succeeds; nothing beyond a limit is ever dropped.
public struct DomainPlan: Sendable {
    public var domains: [PlannedDomain]
    /// Already prefixed with file and line, ready to print.
    public var warnings: [String]

    /// `guestNames` are the built-in guests "tern:" may name. `machineCPUs` is the machine's CPU count
    /// (`--smp`), which affinities must stay within; nil (`tern check` without --smp) means any machine
    /// Tern runs on, up to TernLimits.maximumCPUs. (Affinity travels as one 32-bit cell, tern,affinity,
    /// which holds every CPU Tern runs on.)
    public static func load(configs: [URL], guestNames: [String], machineCPUs: Int? = nil) throws(TernToolError) -> DomainPlan {
        if let machineCPUs { try checkMachineCPUs(machineCPUs) }
        // Counted before any file is read: the remedy is the same whatever the files hold.
        if configs.count > TernLimits.maximumDomains {
            let first = TernLimits.maximumDomains + 1
            throw .config(ConfigError(file: displayName(configs[first - 1]), line: 0, field: nil,
                                      message: "config \(first) of \(configs.count): Tern runs at most \(TernLimits.maximumDomains) domains "
                                          + "(the machine's 8-bit VMIDs tell no more apart)"))
        }
        let cpus = machineCPUs ?? TernLimits.maximumCPUs
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
            if let missing = config.cpus?.first(where: { $0 >= cpus }) {
                let range = cpus == 1 ? "0" : "0...\(cpus - 1)"
                throw fail("cpus", machineCPUs == nil
                    ? "CPU \(missing) is beyond the \(cpus) CPUs Tern runs on (\(range))"
                    : "CPU \(missing) is not on the machine, which has \(cpus) CPU\(cpus == 1 ? "" : "s") (\(range), --smp \(cpus))")
            }
            var domain = PlannedDomain(id: id, config: config, configFile: url, kernel: kernel, ramdisk: ramdisk)
            domain.memoryLine = keyLine("memory", in: text)
            domains.append(domain)
        }
        let plan = DomainPlan(domains: domains, warnings: warnings)
        // The boot modules are not known before the images are built; machine(cpus:modules:) checks
        // again with them.
        try plan.checkMemory(modules: [])
        return plan
    }

    /// `--smp`: at least one CPU, and no more than the hypervisor brings up.
    static func checkMachineCPUs(_ cpus: Int) throws(TernToolError) {
        guard cpus >= 1 else { throw .limit("--smp \(cpus): a machine needs at least 1 CPU") }
        guard cpus <= TernLimits.maximumCPUs else {
            throw .limit("--smp \(cpus): Tern runs on at most \(TernLimits.maximumCPUs) CPUs (--smp 1...\(TernLimits.maximumCPUs))")
        }
    }

    /// The QEMU machine to boot the plan on: `cpus` CPUs and RAM for Tern, `modules` and every domain
    /// (ModuleLayout.machineMemoryMiB). Refused when that is more than QEMU's virt board can have,
    /// naming the config where the domains stop fitting.
    public func machine(cpus: Int, modules: [BootModule]) throws(TernToolError) -> QEMUMachine {
        try Self.checkMachineCPUs(cpus)
        try checkMemory(modules: modules)
        return QEMUMachine(cpus: cpus, memoryMiB: ModuleLayout.machineMemoryMiB(modules: modules,
                                                                              domainMemoryMiB: domains.map(\.config.memoryMiB)))
    }

    /// Adds the domains one at a time, in order, until the machine they need is larger than the largest.
    func checkMemory(modules: [BootModule]) throws(TernToolError) {
        let largest = ModuleLayout.maximumMachineMiB
        var memory: [Int] = []
        for domain in domains {
            memory.append(domain.config.memoryMiB)
            let needed = ModuleLayout.machineMemoryMiB(modules: modules, domainMemoryMiB: memory)
            guard needed > largest else { continue }
            let domainsMiB = memory.reduce(0) { $0 + ModuleLayout.allocatedMiB($1) }
            throw .config(ConfigError(
                file: Self.displayName(domain.configFile), line: domain.memoryLine, field: "memory",
                message: "with this domain the machine would need \(needed) MiB (the domains' \(domainsMiB) MiB, "
                    + "each rounded up to 2 MiB, and \(needed - domainsMiB) MiB for Tern and the boot modules), more than "
                    + "the \(largest) MiB (\(largest / 1024) GiB) a QEMU virt machine can have"))
        }
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
