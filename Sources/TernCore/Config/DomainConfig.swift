// A guest domain's configuration, as the host tool reads it from an xl.cfg(5)-style file and as the
// hypervisor receives it. Pure data: no Foundation, no existentials, so both faces compile it. The
// parser that fills it lives in XLConfigParser.swift and exists on the host face only.

/// What to do when a domain stops, named as in xl.cfg(5) ("on_poweroff", "on_reboot", "on_crash").
public enum ShutdownAction: Equatable, Sendable {
    /// Tear the domain down.
    case destroy
    /// Tear it down and build a fresh one from the same configuration.
    case restart
    /// Keep the stopped domain around for inspection.
    case preserve
    /// Keep the old domain under a new name and start a fresh one.
    case renameRestart

    /// The action's name in xl.cfg syntax.
    public var xlName: String {
        switch self {
        case .destroy: "destroy"
        case .restart: "restart"
        case .preserve: "preserve"
        case .renameRestart: "rename-restart"
        }
    }
}

/// One guest domain's configuration. Field comments name the xl.cfg key each comes from.
public struct DomainConfig: Equatable, Sendable {
    /// "name" (required).
    public var name: String
    /// "memory", in MiB.
    public var memoryMiB: Int
    /// "vcpus".
    public var vcpus: Int
    /// "kernel" (required): path of the guest kernel image.
    public var kernel: String
    /// "ramdisk".
    public var ramdisk: String?
    /// The guest kernel's command line: "cmdline", or else "root" and "extra" combined as xl does.
    public var extra: String
    /// "cpus": hard affinity, the physical CPUs the domain's vCPUs may run on, ascending and without
    /// duplicates. nil means every CPU.
    public var cpus: [Int]?
    /// "cpu_weight": credit-scheduler weight relative to other domains.
    public var weight: Int
    /// "cap": the most CPU the domain may use, in percent of one physical CPU; 0 means no cap.
    public var cap: Int
    /// "on_poweroff".
    public var onPoweroff: ShutdownAction
    /// "on_reboot".
    public var onReboot: ShutdownAction
    /// "on_crash".
    public var onCrash: ShutdownAction
    /// "on_watchdog": when a watchdog the guest armed (SCHEDOP_watchdog) runs out.
    public var onWatchdog: ShutdownAction
    /// "tern_pv" (default on): the guest is told it runs on Xen (the device tree's `hypervisor` node)
    /// and gets shared_info, event channels, a grant table and the PV console ring; off makes it a
    /// plain Arm virtual machine (Xen's dom0less domU without `xen,enhanced`).
    public var xenPV: Bool
    /// "vuart": an emulated SBSA UART (`"sbsa_uart"`, Xen's vpl011) at 0x22000000, SPI 32. nil leaves it
    /// to the toolstack: domUs get one, dom0 (whose console is the hypervisor's) does not.
    public var vuart: Bool?
    /// "direct_map": guest physical = host physical for the domain's RAM, as for Xen's dom0 (which
    /// Linux needs to drive DMA with host addresses). nil leaves it to the toolstack: dom0 is
    /// direct-mapped unless its kernel is one of Tern's own guests, which are linked at 0x40000000.
    public var directMap: Bool?
    /// "detect_panic" (default on): Linux's panic banner on the domain's console ends it as a crash,
    /// so on_crash applies (Linux on Arm has no other way to say it panicked; see PanicWatch). Off for
    /// a domain whose console may show an old panic report, from a log, say.
    public var detectPanic: Bool

    public static let defaultMemoryMiB = 128
    public static let memoryMiBRange: ClosedRange<Int> = 1...(1 << 20)
    public static let vcpuRange: ClosedRange<Int> = 1...TernLimits.maximumVCPUsPerDomain
    public static let defaultWeight = 256
    public static let weightRange: ClosedRange<Int> = 1...65535
    /// Highest physical CPU number "cpus" may name.
    public static let maxCPUID = 255

    /// The allowed "cap" values for a domain with `vcpus` vCPUs: up to 100% of each.
    public static func capRange(vcpus: Int) -> ClosedRange<Int> { 0...(100 * vcpus) }

    public init(
        name: String,
        kernel: String,
        memoryMiB: Int = DomainConfig.defaultMemoryMiB,
        vcpus: Int = 1,
        ramdisk: String? = nil,
        extra: String = "",
        cpus: [Int]? = nil,
        weight: Int = DomainConfig.defaultWeight,
        cap: Int = 0,
        onPoweroff: ShutdownAction = .destroy,
        onReboot: ShutdownAction = .restart,
        onCrash: ShutdownAction = .destroy,
        onWatchdog: ShutdownAction = .destroy,
        xenPV: Bool = true,
        vuart: Bool? = nil,
        directMap: Bool? = nil,
        detectPanic: Bool = true
    ) {
        self.name = name
        self.memoryMiB = memoryMiB
        self.vcpus = vcpus
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.extra = extra
        self.cpus = cpus
        self.weight = weight
        self.cap = cap
        self.onPoweroff = onPoweroff
        self.onReboot = onReboot
        self.onCrash = onCrash
        self.onWatchdog = onWatchdog
        self.xenPV = xenPV
        self.vuart = vuart
        self.directMap = directMap
        self.detectPanic = detectPanic
    }
}

/// A problem in a domain configuration file, located for the person who wrote it. Its description
/// reads `web.cfg:3: memory: expected an integer, got "lots"`; without a field it is
/// `web.cfg:3: message`, and for a problem with the file as a whole (line 0, e.g. a missing key)
/// `web.cfg: kernel: missing required key`.
public struct ConfigError: Error, Equatable, CustomStringConvertible {
    /// The file's name as given to the parser.
    public var file: String
    /// 1-based line number; 0 when the problem belongs to no single line.
    public var line: Int
    /// The key the problem concerns, when there is one.
    public var field: String?
    public var message: String

    public init(file: String, line: Int, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var text = file
        if line > 0 { text += ":\(line)" }
        text += ": "
        if let field { text += field + ": " }
        return text + message
    }
}
