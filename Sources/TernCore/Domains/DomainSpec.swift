// What a domain is built from: a `/chosen` node of the boot device tree (Xen's dom0less `xen,domain`
// nodes, with their `multiboot,kernel` and `multiboot,ramdisk` modules, plus Tern's own `tern,*`
// properties), or the toolstack's createdomain. The boot tree comes from outside Tern's trust (a boot
// loader, a user's config), so a node is read whole or refused with the reason: a module must lie in
// RAM and outside Tern's own image (Tern copies from it), sizes must not wrap.

public struct DomainSpec: Sendable {
    public var id: DomainID
    public var name: [UInt8]
    public var memoryBytes: UInt64
    public var vcpus: Int
    public var weight: UInt32
    public var cap: UInt32
    public var affinity: UInt64
    public var kernel: PhysicalRange
    public var ramdisk: PhysicalRange?
    public var bootargs: [UInt8]
    public var uart: Bool
    public var xenPV: Bool
    /// Guest physical = host physical for its RAM (Xen's dom0, and dom0less `direct-map`).
    public var directMapped: Bool
    /// A Linux panic banner on its console ends it as crashed (PanicWatch); on unless the config says not.
    public var watchesPanic: Bool
    /// xl's on_poweroff, on_reboot, on_crash and on_watchdog.
    public var actions: ShutdownActions
    /// Created by the control domain's toolstack (domctl createdomain), not by the boot configuration.
    public var builtByToolstack: Bool

    public init(id: DomainID, name: [UInt8], memoryBytes: UInt64, vcpus: Int, weight: UInt32, cap: UInt32,
                affinity: UInt64, kernel: PhysicalRange, ramdisk: PhysicalRange?, bootargs: [UInt8], uart: Bool,
                xenPV: Bool, directMapped: Bool, watchesPanic: Bool, actions: ShutdownActions,
                builtByToolstack: Bool = false) {
        self.id = id
        self.name = name
        self.memoryBytes = memoryBytes
        self.vcpus = vcpus
        self.weight = weight
        self.cap = cap
        self.affinity = affinity
        self.kernel = kernel
        self.ramdisk = ramdisk
        self.bootargs = bootargs
        self.uart = uart
        self.xenPV = xenPV
        self.directMapped = directMapped
        self.watchesPanic = watchesPanic
        self.actions = actions
        self.builtByToolstack = builtByToolstack
    }
}

/// Why a domain node was not read.
public enum DomainNodeProblem: Equatable, Sendable {
    case noKernel
    /// `memory` (in KiB) outside 1 MiB ..< 1 PiB.
    case memory(UInt64)
    /// `cpus` outside 1 ... TernLimits.maximumVCPUsPerDomain.
    case vcpus(UInt32)
    /// A module's `reg` wraps or leaves the host's RAM.
    case moduleOutsideRAM(address: UInt64, size: UInt64)
    /// A module's `reg` overlaps what Tern keeps for itself (its image, stacks and heap).
    case moduleOverTern(address: UInt64, size: UInt64)
}

public enum DomainNodeReading: Sendable {
    case spec(DomainSpec)
    case refused(DomainNodeProblem)
}

extension DomainSpec {
    /// 2^40 KiB (1 PiB) is past any machine, and keeps the size in bytes and its alignment in 64 bits.
    static let memoryLimitKB: UInt64 = 1 << 40

    /// Reads one `/chosen` domain node as domain `id`, on a host whose RAM is `ram`, of which Tern keeps
    /// `reserved` for itself.
    public static func read(_ node: DTNode, id: DomainID, ram: [PhysicalRange], reserved: [PhysicalRange] = []) -> DomainNodeReading {
        let memoryKB = node.property("memory").flatMap { $0.u64 ?? $0.u32.map { UInt64($0) } } ?? 0
        let cpus = node.property("cpus")?.u32 ?? 1
        var kernel: PhysicalRange?
        var ramdisk: PhysicalRange?
        var bootargs: [UInt8] = []
        for module in node.children {
            let isKernel = module.isCompatible("multiboot,kernel")
            guard isKernel || module.isCompatible("multiboot,ramdisk"), let r = module.reg(in: node).first else { continue }
            guard let range = bootModule(address: r.address, size: r.size, ram: ram) else {
                return .refused(.moduleOutsideRAM(address: r.address, size: r.size))
            }
            guard !reserved.contains(where: { $0.base.raw < range.end.raw && range.base.raw < $0.end.raw }) else {
                return .refused(.moduleOverTern(address: r.address, size: r.size))
            }
            if isKernel {
                kernel = range
                bootargs = module.property("bootargs")?.string ?? []
            } else {
                ramdisk = range
            }
        }
        guard let kernel else { return .refused(.noKernel) }
        guard memoryKB >= 1024, memoryKB < memoryLimitKB else { return .refused(.memory(memoryKB)) }
        guard cpus >= 1, cpus <= UInt32(TernLimits.maximumVCPUsPerDomain) else { return .refused(.vcpus(cpus)) }
        let twoMiB: UInt64 = 0x20_0000
        return .spec(DomainSpec(
            id: id,
            name: node.property("tern,name")?.string ?? node.name,
            memoryBytes: alignUp(memoryKB * 1024, twoMiB), vcpus: Int(cpus),
            weight: node.property("tern,weight")?.u32 ?? 256, cap: node.property("tern,cap")?.u32 ?? 0,
            affinity: UInt64(node.property("tern,affinity")?.u32 ?? 0xFFFF_FFFF),
            kernel: kernel, ramdisk: ramdisk, bootargs: bootargs, uart: node.property("vpl011") != nil,
            xenPV: node.property("xen,enhanced") != nil,
            directMapped: node.property("direct-map") != nil,
            watchesPanic: node.property("tern,ignore-panic") == nil,
            actions: ShutdownActions(
                poweroff: AfterShutdown(rawValue: node.property("tern,on-poweroff")?.u32 ?? 0) ?? .destroy,
                reboot: AfterShutdown(rawValue: node.property("tern,on-reboot")?.u32 ?? 1) ?? .restart,
                crash: AfterShutdown(rawValue: node.property("tern,on-crash")?.u32 ?? 0) ?? .destroy,
                watchdog: AfterShutdown(rawValue: node.property("tern,on-watchdog")?.u32 ?? 0) ?? .destroy)))
    }

    /// A boot module's bytes, `[address, address + size)`, if they lie whole in one bank of `ram`.
    public static func bootModule(address: UInt64, size: UInt64, ram: [PhysicalRange]) -> PhysicalRange? {
        let start = HostPhysicalAddress(address)
        guard ram.contains(where: { $0.contains(start, length: size) }) else { return nil }
        return PhysicalRange(base: start, size: size)
    }
}
