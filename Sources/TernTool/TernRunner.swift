import Foundation
import TernCore

/// How a run ended.
public struct RunResult: Sendable {
    /// QEMU stopped on its own (the hypervisor powered the machine off, or QEMU failed) rather than being
    /// stopped at the deadline.
    public var exitedByItself: Bool
    public var timedOut: Bool
    /// The caller's `stopWhen` matched a line and QEMU was ended there.
    public var stopped: Bool = false
    /// Everything QEMU printed, the hypervisor's console included, in order.
    public var lines: [String]
    /// When each line arrived, in seconds since QEMU was started.
    public var lineTimes: [TimeInterval] = []
    /// Domain id to the reason of its last shutdown; a domain that restarted shows how it ended last.
    public var shutdowns: [Int: String]
    /// Every configured domain powered off and QEMU then exited by itself: the run went as planned.
    public var allPoweredOff: Bool
    /// The domains as configured, for reporting against `shutdowns`.
    public var domains: [PlannedDomain]
    /// QEMU's exit status when it exited by itself.
    public var qemuStatus: Int32?

    public init(exitedByItself: Bool, timedOut: Bool, lines: [String], shutdowns: [Int: String],
                allPoweredOff: Bool, domains: [PlannedDomain] = [], qemuStatus: Int32? = nil,
                stopped: Bool = false, lineTimes: [TimeInterval] = []) {
        self.stopped = stopped
        self.lineTimes = lineTimes
        self.exitedByItself = exitedByItself
        self.timedOut = timedOut
        self.lines = lines
        self.shutdowns = shutdowns
        self.allPoweredOff = allPoweredOff
        self.domains = domains
        self.qemuStatus = qemuStatus
    }

    /// One line per domain: `d1 (hello): poweroff`.
    public var summary: [String] {
        domains.map { domain in
            "d\(domain.id) (\(domain.config.name)): \(shutdowns[domain.id] ?? "no shutdown reported")"
        }
    }

    /// The shutdowns seen in `lines`; later lines win, since a restarted domain keeps its id.
    public static func shutdowns(in lines: [String]) -> [Int: String] {
        var result: [Int: String] = [:]
        for line in lines {
            if let shutdown = ShutdownLine(line) { result[shutdown.domain] = shutdown.reason }
        }
        return result
    }
}

/// Everything a run needs besides the configs.
public struct RunOptions: Sendable {
    public var smp: Int
    public var timeout: TimeInterval
    public var extraQEMUArguments: [String]
    /// Give QEMU this process's stdin (for typing at a guest) instead of /dev/null.
    public var passStandardInput: Bool
    /// Where base.dtb and boot.dtb go. nil: a temporary folder, removed afterwards.
    public var workDirectory: URL?
    /// Ends the run at the first console line this accepts (for guests that never end by themselves).
    public var stopWhen: (@Sendable (String) -> Bool)?
    /// Types at the console: for each line, the keys to send in answer, if any.
    public var typeWhen: (@Sendable (String) -> String?)?
    /// Boot Xen 4.17 instead of Tern (for side-by-side measurement).
    public var xen: XenBoot?
    /// Changes the boot device tree after Tern wrote it: a boot configuration no config file can
    /// express (a hand-written or damaged one), for tests of what the hypervisor does with it.
    public var editBootTree: (@Sendable (DTNode) -> Void)?

    public init(smp: Int = 2, timeout: TimeInterval = 60, extraQEMUArguments: [String] = [],
                passStandardInput: Bool = false, workDirectory: URL? = nil,
                stopWhen: (@Sendable (String) -> Bool)? = nil, typeWhen: (@Sendable (String) -> String?)? = nil) {
        self.stopWhen = stopWhen
        self.typeWhen = typeWhen
        self.smp = smp
        self.timeout = timeout
        self.extraQEMUArguments = extraQEMUArguments
        self.passStandardInput = passStandardInput
        self.workDirectory = workDirectory
    }
}

/// A run made ready but not started: what `tern run --dry-run` shows.
public struct PreparedRun: Sendable {
    public var plan: DomainPlan
    public var modules: [BootModule]
    public var machine: QEMUMachine
    public var dtb: URL
    public var qemu: URL
    public var arguments: [String]
}

/// The whole toolstack in one place: configs to images to device tree to a running QEMU.
public struct TernRunner: Sendable {
    public let layout: PackageLayout
    /// Progress messages (build steps, image sizes); printed by default.
    public var log: @Sendable (String) -> Void

    /// `packageRoot` nil: found from the current directory upwards. A root that cannot be found is
    /// reported by the first call that needs it, so that an init cannot fail.
    public init(packageRoot: URL? = nil, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        if let packageRoot {
            layout = PackageLayout(root: packageRoot)
        } else {
            layout = (try? PackageLayout.locate()) ?? PackageLayout(root: URL(fileURLWithPath: FileManager.default.currentDirectoryPath))
        }
        self.log = log
    }

    private func checkedLayout() throws(TernToolError) -> PackageLayout {
        guard PackageLayout.isPackageRoot(layout.root) else { throw .packageRootNotFound(start: layout.root.path) }
        return layout
    }

    /// Builds the hypervisor and every built-in guest.
    public func build() throws -> BuiltImages {
        try ImageBuilder(layout: checkedLayout(), log: log).buildAll()
    }

    /// Parses and cross-checks configs without building anything. `machineCPUs`: the machine's CPU
    /// count (`--smp`), which is checked too; nil means any machine Tern runs on.
    public func check(configs: [URL], machineCPUs: Int? = nil) throws(TernToolError) -> DomainPlan {
        try DomainPlan.load(configs: configs, guestNames: checkedLayout().guestNames(), machineCPUs: machineCPUs)
    }

    public func run(configs: [URL], smp: Int = 2, timeout: TimeInterval = 60,
                    extraQEMUArguments: [String] = [], echo: Bool = false,
                    stopWhen: (@Sendable (String) -> Bool)? = nil,
                    typeWhen: (@Sendable (String) -> String?)? = nil) throws -> RunResult {
        let options = RunOptions(smp: smp, timeout: timeout, extraQEMUArguments: extraQEMUArguments,
                                 stopWhen: stopWhen, typeWhen: typeWhen)
        return try run(configs: configs, options: options, onLine: { line in if echo { print(line) } })
    }

    /// A run that is about to be killed at its deadline is asked for Tern's vCPU dump first (debug key
    /// 'q'), so a hang leaves evidence in the lines: CTRL-a three times until the focus is on Tern.
    @Sendable static func dumpHypervisorState(_ keyboard: Keyboard) {
        // The focus goes round every domain before it reaches Tern: one step per domain, each over as
        // soon as the console says where the focus went.
        for _ in 0 ..< TernLimits.maximumDomains + 2 {
            keyboard.type("\u{1}\u{1}\u{1}")
            var reachedTern = false
            _ = keyboard.await(seconds: 0.5) { line in
                if line.hasPrefix("(tern) *** console input goes to Tern") { reachedTern = true }
                return line.hasPrefix("(tern) *** console input goes to ")
            }
            if reachedTern {
                keyboard.type("q")
                _ = keyboard.await(seconds: 2) { $0.hasPrefix("(tern) pcpu") }
                return
            }
        }
    }

    /// Builds what the configs need, boots them, and returns when QEMU exits or the timeout passes.
    /// `onLine` gets each console line as it arrives, on a background thread.
    public func run(configs: [URL], options: RunOptions,
                    onLine: @escaping @Sendable (String) -> Void) throws(TernToolError) -> RunResult {
        let work = try workDirectory(options)
        defer { if options.workDirectory == nil { try? FileManager.default.removeItem(at: work) } }
        let prepared = try prepare(configs: configs, options: options, in: work)
        let streamed = try Subprocess.stream(prepared.qemu, prepared.arguments, in: layout.root,
                                             passStandardInput: options.passStandardInput,
                                             timeout: options.timeout, stopWhen: options.stopWhen,
                                             typeWhen: options.typeWhen,
                                             lastWords: options.passStandardInput || options.xen != nil ? nil : Self.dumpHypervisorState,
                                             onLine: onLine)
        let shutdowns = RunResult.shutdowns(in: streamed.lines)
        let exited = !streamed.timedOut && !streamed.stopped
        let allPoweredOff = exited && prepared.plan.domains.allSatisfy { shutdowns[$0.id] == "poweroff" }
        return RunResult(exitedByItself: exited, timedOut: streamed.timedOut, lines: streamed.lines,
                         shutdowns: shutdowns, allPoweredOff: allPoweredOff, domains: prepared.plan.domains,
                         qemuStatus: streamed.status, stopped: streamed.stopped, lineTimes: streamed.lineTimes)
    }

    /// Everything up to starting QEMU: configs and --smp checked first (so a bad config, or one beyond a
    /// limit, starts nothing), then the images built, the modules placed, and the boot device tree
    /// written to `work`/boot.dtb.
    public func prepare(configs: [URL], options: RunOptions, in work: URL) throws(TernToolError) -> PreparedRun {
        let plan = try check(configs: configs, machineCPUs: options.smp)
        for warning in plan.warnings { log("warning: \(warning)") }
        let images = try ImageBuilder(layout: layout, log: log).build(guests: plan.builtInGuests)
        let modules = try placeModules(plan, images: images)
        // Checked again now that the modules' sizes are known, before QEMU is started.
        let machine = try plan.machine(cpus: options.smp, modules: modules)
        let qemu = try HostTools.qemu()

        let base = work.appendingPathComponent("base.dtb")
        let dump = try Subprocess.capture(qemu, machine.dumpArguments(to: base))
        guard dump.status == 0, let baseBlob = FileManager.default.contents(atPath: base.path) else {
            throw .commandFailed(command: "qemu-system-aarch64 dumpdtb", status: dump.status, output: dump.output)
        }
        let blob = try BootDeviceTree.assemble(base: [UInt8](baseBlob), domains: plan.domains, modules: modules,
                                               xen: options.xen, edit: options.editBootTree)
        let dtb = work.appendingPathComponent("boot.dtb")
        do {
            try Data(blob).write(to: dtb)
        } catch {
            throw .io("cannot write \(dtb.path): \(error.localizedDescription)")
        }
        let arguments = machine.bootArguments(dtb: dtb, hypervisor: options.xen?.binary ?? images.hypervisor, modules: modules,
                                              extra: options.extraQEMUArguments)
        return PreparedRun(plan: plan, modules: modules, machine: machine, dtb: dtb, qemu: qemu, arguments: arguments)
    }

    /// One module per kernel and ramdisk per domain, even when domains share a file: the hypervisor
    /// rebuilds a restarting domain from its module, so each domain's copy stays its own.
    func placeModules(_ plan: DomainPlan, images: BuiltImages) throws(TernToolError) -> [BootModule] {
        var files: [(domain: Int, kind: BootModule.Kind, file: URL, size: UInt64)] = []
        func add(_ source: ImageSource, _ kind: BootModule.Kind, _ domain: Int) throws(TernToolError) {
            let file: URL
            switch source {
            case .builtIn(let guest): file = images.guests[guest] ?? layout.guestImage(guest)
            case .file(let url): file = url
            }
            guard let size = fileSize(file) else { throw .missingImage(path: file.path) }
            files.append((domain, kind, file, UInt64(size)))
        }
        for domain in plan.domains {
            try add(domain.kernel, .kernel, domain.id)
            if let ramdisk = domain.ramdisk { try add(ramdisk, .ramdisk, domain.id) }
        }
        return ModuleLayout.place(files)
    }

    private func workDirectory(_ options: RunOptions) throws(TernToolError) -> URL {
        let folder = options.workDirectory
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("tern-\(UUID().uuidString)")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(folder.path): \(error.localizedDescription)")
        }
        return folder
    }
}
