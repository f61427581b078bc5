// sysctl (xen/include/public/sysctl.h at XEN_SYSCTL_INTERFACE_VERSION 0x15): the control domain's
// questions about the machine, as `xl info` and `xl list` ask them through libxc. Xen's order: the
// copy of the structure (-EFAULT), its interface version (-EACCES), then the caller's privilege (the
// dummy XSM policy: the control domain only, -EPERM); a command Tern does not have is -ENOSYS. The
// structure goes back whole, as Xen copies it back.

public let sysctlInterfaceVersion: UInt32 = 0x15

public enum SysctlCommand: UInt32 {
    case readconsole = 1, physinfo = 3, schedID = 4, getdomaininfolist = 6, debugKeys = 7, cputopoinfo = 16, numainfo = 17
    case cpupoolOp = 18, schedulerOp = 19
}

/// The 128-byte, 8-byte-aligned union that sysctl's and domctl's commands share.
public struct XenCommandUnion {
    var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    public init() {}
}

/// A Xen structure with a command's arguments in a XenCommandUnion.
public protocol XenCommandStructure {
    var union: XenCommandUnion { get set }
}

extension XenCommandStructure {
    /// The union read as one of its members.
    public func payload<T>(as: T.Type) -> T {
        precondition(MemoryLayout<T>.size <= 128)
        return withUnsafeBytes(of: union) { $0.loadUnaligned(as: T.self) }
    }

    public mutating func setPayload<T>(_ value: T) {
        precondition(MemoryLayout<T>.size <= 128)
        withUnsafeMutableBytes(of: &union) { $0.storeBytes(of: value, as: T.self) }
    }
}

/// struct xen_sysctl: cmd, interface_version, and the union.
public struct XenSysctl: XenCommandStructure {
    public var command: UInt32 = 0
    public var interfaceVersion: UInt32 = 0
    public var union = XenCommandUnion()
    public init() {}
}

/// struct xen_sysctl_readconsole (24 bytes).
public struct SysctlReadConsole {
    public var clear: UInt8 = 0
    public var incremental: UInt8 = 0
    var pad: UInt16 = 0
    public var index: UInt32 = 0
    public var buffer: UInt64 = 0
    public var count: UInt32 = 0
    var tailPad: UInt32 = 0
    public init() {}
}

/// struct xen_sysctl_physinfo (112 bytes).
public struct SysctlPhysinfo {
    public var threadsPerCore: UInt32 = 0
    public var coresPerSocket: UInt32 = 0
    public var cpus: UInt32 = 0
    public var maxCPUID: UInt32 = 0
    public var nodes: UInt32 = 0
    public var maxNodeID: UInt32 = 0
    public var cpuKHz: UInt32 = 0
    public var capabilities: UInt32 = 0
    public var archCapabilities: UInt32 = 0
    var pad: UInt32 = 0
    public var totalPages: UInt64 = 0
    public var freePages: UInt64 = 0
    public var scrubPages: UInt64 = 0
    public var outstandingPages: UInt64 = 0
    public var maxFrame: UInt64 = 0
    public var hardwareCapabilities: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0, 0, 0, 0, 0)
    public init() {}

    /// XEN_SYSCTL_PHYSCAP_hvm, _hap and _gnttab_v1: what Xen 4.17 on Arm without an IOMMU reports.
    public static let armCapabilities: UInt32 = 1 << 0 | 1 << 3 | 1 << 8
}

/// struct xen_sysctl_getdomaininfolist (24 bytes).
public struct SysctlGetDomainInfoList {
    public var firstDomain: UInt16 = 0
    var pad: UInt16 = 0
    public var maxDomains: UInt32 = 0
    public var buffer: UInt64 = 0
    public var domainCount: UInt32 = 0
    var tailPad: UInt32 = 0
    public init() {}
}

/// struct xen_sysctl_cputopoinfo and struct xen_sysctl_numainfo (their handles are 64-bit).
public struct SysctlCPUTopologyInfo {
    public var cpuCount: UInt32 = 0
    var pad: UInt32 = 0
    public var topology: UInt64 = 0
    public init() {}
}

public struct SysctlNUMAInfo {
    public var nodeCount: UInt32 = 0
    var pad: UInt32 = 0
    public var memoryInfo: UInt64 = 0
    public var distance: UInt64 = 0
    public init() {}
}

/// struct xen_sysctl_cpupool_op (40 bytes), its cpumap a struct xenctl_bitmap.
public struct SysctlCPUPoolOp {
    public var operation: UInt32 = 0
    public var pool: UInt32 = 0
    public var schedulerID: UInt32 = 0
    public var domain: UInt32 = 0
    public var cpu: UInt32 = 0
    public var domainCount: UInt32 = 0
    public var cpumap: UInt64 = 0
    public var cpumapBits: UInt32 = 0
    var pad: UInt32 = 0
    public init() {}

    public static let info: UInt32 = 3, freeInfo: UInt32 = 7
    /// XEN_SYSCTL_CPUPOOL_PAR_ANY.
    public static let anyPool: UInt32 = .max
}

/// struct xen_sysctl_debug_keys (16 bytes).
public struct SysctlDebugKeys {
    public var keys: UInt64 = 0
    public var count: UInt32 = 0
    var pad: UInt32 = 0
    public init() {}
}

/// struct xen_sysctl_scheduler_op (32 bytes) with credit2's parameters in its union (8-byte aligned).
public struct SysctlSchedulerOp {
    public var pool: UInt32 = 0
    public var schedulerID: UInt32 = 0
    public var command: UInt32 = 0
    var pad: UInt32 = 0
    public var ratelimitMicroseconds: UInt32 = 0
    var unionTail: (UInt32, UInt32, UInt32) = (0, 0, 0)
    public init() {}

    public static let putinfo: UInt32 = 0, getinfo: UInt32 = 1
    /// XEN_SYSCTL_SCHED_RATELIMIT_MIN and _MAX, in microseconds (0 turns the limit off).
    public static let ratelimitRange: ClosedRange<UInt32> = 100 ... 500_000
}

/// The machine as the toolstack sees it.
public struct MachineSummary: Equatable, Sendable {
    public var cpus: Int
    public var counterFrequency: UInt64
    public var totalPages: UInt64
    public var freePages: UInt64
    /// The highest RAM frame number.
    public var maxFrame: UInt64

    public init(cpus: Int, counterFrequency: UInt64, totalPages: UInt64, freePages: UInt64, maxFrame: UInt64) {
        self.cpus = cpus
        self.counterFrequency = counterFrequency
        self.totalPages = totalPages
        self.freePages = freePages
        self.maxFrame = maxFrame
    }
}

/// What sysctl and domctl need from the hypervisor.
public protocol ToolstackHost {
    var machine: MachineSummary { get }
    /// The domains whose IDs are `first` or above, in ID order, at most `limit` of them.
    func domains(from first: DomainID, limit: Int) -> [DomainSummary]
    /// The scheduler's rate limit (Xen's ratelimit_us: how long a vCPU runs before a woken one may
    /// take its CPU), in microseconds, and a new one for it.
    var schedulerRatelimit: UInt32 { get }
    func setSchedulerRatelimit(_ microseconds: UInt32)
    /// A key pressed as on Xen's console (its debug keys).
    func debugKey(_ key: UInt8)
    /// Domain `id`'s weight and cap (percent of a CPU, 0: none), and new ones for it.
    func schedulerParameters(_ id: DomainID) -> (weight: UInt32, cap: UInt32)
    func setSchedulerParameters(_ id: DomainID, weight: UInt32, cap: UInt32)
    /// vCPU `index` of domain `id`; nil when it has none such.
    func vcpu(_ id: DomainID, _ index: Int) -> VCPUSummary?
    /// The control domain destroys domain `id` (which exists, and is not the caller), dying or not.
    func destroy(_ id: DomainID) -> XenError?
    /// The toolstack's pause of domain `id` (which exists, and is not the caller): nil when done.
    func pause(_ id: DomainID) -> XenError?
    func unpause(_ id: DomainID) -> XenError?
    /// createdomain: a new domain with no memory, its vCPUs offline, paused by the toolstack.
    func create(_ request: DomainCreation) -> Result<DomainID, XenError>
    /// setdomainhandle: domain `id`'s UUID (16 bytes) from now on.
    func setHandle(_ id: DomainID, _ handle: [UInt8]) -> XenError?
    /// max_mem: the most pages domain `id` may have.
    func setMaximumMemory(_ id: DomainID, pages: UInt64) -> XenError?
    /// set_paging_mempool_size: the most stage-2 table pages domain `id` may have (TablePool.resize).
    func setTablePool(_ id: DomainID, pages: UInt64) -> XenError?
    /// get_paging_mempool_size: its pool's size in pages; nil when there is no such domain.
    func tablePool(_ id: DomainID) -> UInt64?
    /// setvcpucontext: vCPU `vcpu` of domain `id` (not the caller) takes the context; nil resets it.
    func setVCPUContext(_ id: DomainID, vcpu: Int, _ context: VCPUContext?) -> XenError?
    /// setvcpuaffinity: the CPUs vCPU `vcpu` of domain `id` may run on (some of the machine's); what
    /// it got, nil when it has no such vCPU.
    func setVCPUAffinity(_ id: DomainID, vcpu: Int, hard: UInt64) -> UInt64?
    /// cacheflush: what the toolstack wrote to the frames is in memory, for a guest with caches off.
    func cleanCaches(_ id: DomainID, frames first: UInt64, count: UInt64) -> XenError?
    /// The hypervisor's console history, read as ConsoleHistory.read does.
    func readConsole(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                     _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)?
}

public enum Sysctl {
    /// XEN_SCHEDULER_CREDIT2, Xen 4.17's default: weights and caps, as Tern's scheduler has them.
    public static let schedulerID: UInt32 = 6
    /// The distance Xen 4.17 on Arm gives its one node to itself (its __node_distance).
    static let localDistance: UInt32 = 20

    /// Carries out the request at `arg` and writes the answer back; nil when done, else Xen's error.
    public static func perform<Memory: GuestMemoryAccess, Host: ToolstackHost>(
        _ arg: VirtualAddress, _ memory: inout Memory, privileged: Bool, _ host: Host
    ) -> XenError? {
        var op = XenSysctl()
        guard memory.read(&op, from: arg) else { return .EFAULT }
        guard op.interfaceVersion == sysctlInterfaceVersion else { return .EACCES }
        guard privileged else { return .EPERM }
        switch SysctlCommand(rawValue: op.command) {
        case .physinfo:
            op.setPayload(physinfo(host.machine))
        case .schedID:
            op.setPayload(schedulerID)
        case .getdomaininfolist:
            var list = op.payload(as: SysctlGetDomainInfoList.self)
            let found = host.domains(from: DomainID(list.firstDomain), limit: Int(list.maxDomains))
            for (i, d) in found.enumerated() {
                let at = VirtualAddress(list.buffer &+ UInt64(i * MemoryLayout<XenDomainInfo>.stride))
                guard memory.write(XenDomainInfo(d), to: at) else { return .EFAULT }
            }
            list.domainCount = UInt32(found.count)
            op.setPayload(list)
        case .cputopoinfo:
            var info = op.payload(as: SysctlCPUTopologyInfo.self)
            let cpus = UInt32(host.machine.cpus)
            if info.topology != 0 {
                // Every CPU core 0 of socket 0 in node 0, as Xen on Arm reports them.
                for cpu in 0 ..< min(info.cpuCount, cpus) {
                    let entry: (UInt32, UInt32, UInt32) = (0, 0, 0)
                    guard memory.write(entry, to: VirtualAddress(info.topology &+ UInt64(cpu) * 12)) else {
                        return .EFAULT
                    }
                }
            }
            // Whether asked for the count, cut short or given room: the machine's count.
            info.cpuCount = cpus
            op.setPayload(info)
        case .numainfo:
            var info = op.payload(as: SysctlNUMAInfo.self)
            if info.nodeCount > 0 && info.memoryInfo != 0 {
                let machine = host.machine
                let sizes: (UInt64, UInt64) = (machine.totalPages << 12, machine.freePages << 12)
                guard memory.write(sizes, to: VirtualAddress(info.memoryInfo)) else { return .EFAULT }
            }
            if info.nodeCount > 0 && info.distance != 0 {
                guard memory.write(localDistance, to: VirtualAddress(info.distance)) else { return .EFAULT }
            }
            info.nodeCount = 1
            op.setPayload(info)
        case .cpupoolOp:
            // One pool, 0, with every CPU and every domain in it, as Xen boots without cpupools set up.
            var pool = op.payload(as: SysctlCPUPoolOp.self)
            let cpus = host.machine.cpus
            switch pool.operation {
            case SysctlCPUPoolOp.info:
                guard pool.pool == SysctlCPUPoolOp.anyPool || pool.pool == 0 else { return .ENOENT }
                pool.pool = 0
                pool.schedulerID = schedulerID
                pool.domainCount = UInt32(host.domains(from: DomainID(0), limit: Int(DomainIDs.firstReserved)).count)
                guard writeCPUMap(pool.cpumap, bits: pool.cpumapBits, mask: cpuMask(cpus), &memory) else { return .EFAULT }
            case SysctlCPUPoolOp.freeInfo:
                guard writeCPUMap(pool.cpumap, bits: pool.cpumapBits, mask: 0, &memory) else { return .EFAULT }
            default:
                return .ENOSYS
            }
            op.setPayload(pool)
        case .schedulerOp:
            // Xen's sched_adjust_global then credit2's sys_cntl: the command, the pool (0 only), the
            // scheduler it runs, then the value.
            var sched = op.payload(as: SysctlSchedulerOp.self)
            guard sched.command == SysctlSchedulerOp.putinfo || sched.command == SysctlSchedulerOp.getinfo else { return .EINVAL }
            guard sched.pool == 0 else { return .ESRCH }
            guard sched.schedulerID == schedulerID else { return .EINVAL }
            if sched.command == SysctlSchedulerOp.putinfo {
                let limit = sched.ratelimitMicroseconds
                guard limit == 0 || SysctlSchedulerOp.ratelimitRange.contains(limit) else { return .EINVAL }
                host.setSchedulerRatelimit(limit)
            }
            sched.ratelimitMicroseconds = host.schedulerRatelimit
            op.setPayload(sched)
        case .debugKeys:
            // Each key as if typed, one byte read at a time as Xen does; nothing is copied back.
            let keys = op.payload(as: SysctlDebugKeys.self)
            for i in 0 ..< UInt64(keys.count) {
                var key: UInt8 = 0
                guard memory.read(&key, from: VirtualAddress(keys.keys &+ i)) else { return .EFAULT }
                host.debugKey(key)
            }
            return nil
        case .readconsole:
            var read = op.payload(as: SysctlReadConsole.self)
            let buffer = read.buffer
            guard let (count, next) = host.readConsole(
                max: read.count, from: read.index, incremental: read.incremental != 0, clear: read.clear != 0,
                { offset, piece in memory.copy(to: VirtualAddress(buffer &+ UInt64(offset)), from: UnsafeRawPointer(piece.baseAddress!), count: piece.count) }
            ) else { return .EFAULT }
            read.count = count
            read.index = next
            op.setPayload(read)
        case nil:
            return .ENOSYS
        }
        guard memory.write(op, to: arg) else { return .EFAULT }
        return nil
    }

    /// CPUs 0 ..< `cpus`, bit n for CPU n.
    public static func cpuMask(_ cpus: Int) -> UInt64 { cpus >= 64 ? ~0 : (1 << UInt64(cpus)) - 1 }

    /// The CPUs a xenctl_bitmap of `bits` bits at `map` names (CPUs past 63 are not Tern's); nil when it
    /// cannot be read.
    static func readCPUMap<Memory: GuestMemoryAccess>(_ map: UInt64, bits: UInt32, _ memory: inout Memory) -> UInt64? {
        var mask: UInt64 = 0
        for i in 0 ..< min((Int(bits) + 7) / 8, 8) {
            var byte: UInt8 = 0
            guard memory.read(&byte, from: VirtualAddress(map &+ UInt64(i))) else { return nil }
            mask |= UInt64(byte) << UInt64(8 * i)
        }
        return bits >= 64 ? mask : mask & ((1 << UInt64(bits)) - 1)
    }

    /// A xenctl_bitmap of `bits` bits at `map` holding `mask` (bit n for CPU n), as Xen's
    /// cpumask_to_xenctl_bitmap writes it: every byte the caller has room for, zero past the mask.
    static func writeCPUMap<Memory: GuestMemoryAccess>(_ map: UInt64, bits: UInt32, mask: UInt64, _ memory: inout Memory) -> Bool {
        for i in 0 ..< (Int(bits) + 7) / 8 {
            let byte = i < 8 ? UInt8(truncatingIfNeeded: mask >> UInt64(8 * i)) : 0
            guard memory.write(byte, to: VirtualAddress(map &+ UInt64(i))) else { return false }
        }
        return true
    }

    /// XEN_SYSCTL_physinfo as Xen 4.17 on Arm fills it: one thread per core, one core per socket
    /// (its Arm topology), one node, the timer's frequency as cpu_khz.
    public static func physinfo(_ m: MachineSummary) -> SysctlPhysinfo {
        var p = SysctlPhysinfo()
        p.threadsPerCore = 1
        p.coresPerSocket = 1
        p.cpus = UInt32(m.cpus)
        p.maxCPUID = UInt32(m.cpus - 1)
        p.nodes = 1
        p.maxNodeID = 0
        p.cpuKHz = UInt32(truncatingIfNeeded: m.counterFrequency / 1000)
        p.capabilities = SysctlPhysinfo.armCapabilities
        p.totalPages = m.totalPages
        p.freePages = m.freePages
        p.maxFrame = m.maxFrame
        return p
    }
}
