// domctl (xen/include/public/domctl.h at XEN_DOMCTL_INTERFACE_VERSION 0x15): the control domain acting
// on one domain. Xen 4.17's order: the copy (-EFAULT), the interface version (-EACCES), the domain
// (-ESRCH; for getdomaininfo after the privilege), then the caller's privilege (-EPERM); a command
// Tern does not have is -ENOSYS.
// getdomaininfo keeps 4.17's meaning, which libxc's xc_domain_getinfo relies on: the first domain
// whose ID is the one asked for or above (Xen 4.18 made it exact).

public let domctlInterfaceVersion: UInt32 = 0x15

public enum DomctlCommand: UInt32 {
    case createdomain = 1, destroydomain = 2, pausedomain = 3, unpausedomain = 4, getdomaininfo = 5
    case setvcpuaffinity = 9, maxMem = 11, setvcpucontext = 12, getvcpuinfo = 14, maxVCPUs = 15
    case schedulerOp = 16, setdomainhandle = 17, getvcpuaffinity = 25, setAddressSize = 35, getAddressSize = 36
    case setnodeaffinity = 68, cacheflush = 71, getPagingMempoolSize = 85, setPagingMempoolSize = 86
}

/// struct xen_domctl: cmd, interface_version, domain, padding, and the union.
public struct XenDomctl: XenCommandStructure {
    public var command: UInt32 = 0
    public var interfaceVersion: UInt32 = 0
    public var domain: UInt16 = 0
    var pad: (UInt16, UInt16, UInt16) = (0, 0, 0)
    public var union = XenCommandUnion()
    public init() {}
}

/// struct xen_domctl_getvcpuinfo (24 bytes).
public struct DomctlGetVCPUInfo {
    public var vcpu: UInt32 = 0
    public var online: UInt8 = 0
    public var blocked: UInt8 = 0
    public var running: UInt8 = 0
    var pad: UInt8 = 0
    public var cpuTime: UInt64 = 0
    public var cpu: UInt32 = 0
    var tailPad: UInt32 = 0
    public init() {}
}

/// struct xen_domctl_vcpuaffinity (40 bytes): two xenctl_bitmaps.
public struct DomctlVCPUAffinity {
    public var vcpu: UInt32 = 0
    public var flags: UInt32 = 0
    public var hardMap: UInt64 = 0
    public var hardBits: UInt32 = 0
    var hardPad: UInt32 = 0
    public var softMap: UInt64 = 0
    public var softBits: UInt32 = 0
    var softPad: UInt32 = 0
    public init() {}

    public static let hard: UInt32 = 1 << 0, soft: UInt32 = 1 << 1
}

/// struct xen_domctl_scheduler_op with credit2's parameters in its union (which is 8-byte aligned).
public struct DomctlSchedulerOp {
    public var schedulerID: UInt32 = 0
    public var command: UInt32 = 0
    public var weight: UInt16 = 0
    public var cap: UInt16 = 0
    public init() {}

    public static let putinfo: UInt32 = 0, getinfo: UInt32 = 1
}

/// One vCPU as the toolstack sees it.
public struct VCPUSummary: Equatable, Sendable {
    public var online: Bool
    /// Waiting for an event (Xen's VPF_blocked).
    public var blocked: Bool
    public var running: Bool
    public var cpuTime: Nanoseconds
    /// The CPU it runs on, or last ran on.
    public var cpu: Int
    /// The CPUs it may run on (its hard affinity), bit n for CPU n.
    public var affinity: UInt64

    public init(online: Bool, blocked: Bool, running: Bool, cpuTime: Nanoseconds, cpu: Int, affinity: UInt64) {
        self.online = online
        self.blocked = blocked
        self.running = running
        self.cpuTime = cpuTime
        self.cpu = cpu
        self.affinity = affinity
    }
}

public enum Domctl {
    public static func perform<Memory: GuestMemoryAccess, Host: ToolstackHost>(
        _ arg: VirtualAddress, _ memory: inout Memory, caller: DomainID, privileged: Bool, _ host: Host
    ) -> XenError? {
        var op = XenDomctl()
        guard memory.read(&op, from: arg) else { return .EFAULT }
        guard op.interfaceVersion == domctlInterfaceVersion else { return .EACCES }
        guard let command = DomctlCommand(rawValue: op.command) else {
            guard privileged else { return .EPERM }
            return .ENOSYS
        }
        // createdomain names no existing domain; getdomaininfo asks XSM first and answers for the first
        // domain at or above the ID; the others act on exactly the domain named: Xen looks it up
        // (-ESRCH), then asks XSM (-EPERM).
        let id = DomainID(op.domain)
        let d: DomainSummary
        if command == .createdomain {
            guard privileged else { return .EPERM }
            if let refused = createDomain(&op, host) { return refused }
            return memory.write(op, to: arg) ? nil : .EFAULT
        } else if command == .getdomaininfo {
            guard privileged else { return .EPERM }
            guard let first = host.domains(from: id, limit: 1).first else { return .ESRCH }
            d = first
        } else {
            guard let named = host.domains(from: id, limit: 1).first, named.id == id else { return .ESRCH }
            guard privileged else { return .EPERM }
            d = named
        }
        switch command {
        case .createdomain:
            return .EINVAL              // answered above
        case .maxVCPUs:
            // 4.17 sizes the domain at createdomain: this may only repeat that size.
            guard id != caller, op.payload(as: UInt32.self) == UInt32(d.vcpus) else { return .EINVAL }
            return nil
        case .maxMem:
            // KiB to pages; Xen takes any value, even below what the domain has (a balloon gives back).
            return host.setMaximumMemory(id, pages: op.payload(as: UInt64.self) >> 2)
        case .setdomainhandle:
            // init-dom0less names a boot-time domain's UUID so; nothing goes back.
            let words = op.payload(as: (UInt32, UInt32, UInt32, UInt32).self)
            return host.setHandle(id, withUnsafeBytes(of: words) { Array($0) })
        case .setAddressSize:
            // Tern runs AArch64 guests only; Xen on Arm would take 32 for an AArch32 one.
            return op.payload(as: UInt32.self) == 64 ? nil : .EINVAL
        case .getAddressSize:
            op.setPayload(UInt32(64))
        case .setnodeaffinity:
            // One node (numainfo's): a map without it names none of the machine's memory.
            let map = op.payload(as: (UInt64, UInt32).self)
            guard let nodes = Sysctl.readCPUMap(map.0, bits: map.1, &memory) else { return .EFAULT }
            return nodes & 1 != 0 ? nil : .EINVAL
        case .setPagingMempoolSize:
            // The most stage-2 table pages the domain may have (TablePool.swift).
            let size = op.payload(as: UInt64.self)
            guard size & (pageSize - 1) == 0 else { return .EINVAL }
            return host.setTablePool(id, pages: size / pageSize)
        case .getPagingMempoolSize:
            guard let pages = host.tablePool(id) else { return .ESRCH }
            op.setPayload(pages * pageSize)
        case .cacheflush:
            let flush = op.payload(as: DomctlCacheFlush.self)
            guard flush.frames <= DomctlCacheFlush.maximumFrames, flush.startFrame &+ flush.frames >= flush.startFrame
            else { return .EINVAL }
            return host.cleanCaches(id, frames: flush.startFrame, count: flush.frames)
        case .setvcpucontext:
            return setVCPUContext(op, d, caller: caller, &memory, host)
        case .setvcpuaffinity:
            return setVCPUAffinity(op, d, &memory, host)
        case .getdomaininfo:
            op.setPayload(XenDomainInfo(d))
            op.domain = d.id.raw
        case .destroydomain:
            // As Xen's domain_kill: a domain does not destroy itself (it shuts itself down).
            guard id != caller else { return .EINVAL }
            return host.destroy(id)
        case .getvcpuinfo, .getvcpuaffinity:
            // Xen's order: a vCPU number past the domain's is -EINVAL; one it has not is -ESRCH.
            let index = op.payload(as: UInt32.self)
            guard index < UInt32(d.vcpus) else { return .EINVAL }
            guard let v = host.vcpu(id, Int(index)) else { return .ESRCH }
            if command == .getvcpuinfo {
                var info = DomctlGetVCPUInfo()
                info.vcpu = index
                info.online = v.online ? 1 : 0
                info.blocked = v.blocked ? 1 : 0
                info.running = v.running ? 1 : 0
                info.cpuTime = v.cpuTime.raw
                info.cpu = UInt32(v.cpu)
                op.setPayload(info)
            } else {
                let affinity = op.payload(as: DomctlVCPUAffinity.self)
                guard affinity.flags & (DomctlVCPUAffinity.hard | DomctlVCPUAffinity.soft) != 0 else { return .EINVAL }
                // Tern has no soft affinity: every CPU, as Xen's default.
                if affinity.flags & DomctlVCPUAffinity.hard != 0 {
                    guard Sysctl.writeCPUMap(affinity.hardMap, bits: affinity.hardBits, mask: v.affinity, &memory) else { return .EFAULT }
                }
                if affinity.flags & DomctlVCPUAffinity.soft != 0 {
                    guard Sysctl.writeCPUMap(affinity.softMap, bits: affinity.softBits, mask: Sysctl.cpuMask(host.machine.cpus), &memory) else { return .EFAULT }
                }
            }
        case .schedulerOp:
            var request = op.payload(as: DomctlSchedulerOp.self)
            // Xen's sched_adjust and credit2's csched2_dom_cntl: the domain's scheduler, domain-wide
            // parameters only; a weight or cap of 0 leaves the weight, and removes the cap.
            guard request.schedulerID == Sysctl.schedulerID else { return .EINVAL }
            let now = host.schedulerParameters(id)
            switch request.command {
            case DomctlSchedulerOp.getinfo:
                request.weight = UInt16(truncatingIfNeeded: now.weight)
                request.cap = UInt16(truncatingIfNeeded: now.cap)
                op.setPayload(request)
            case DomctlSchedulerOp.putinfo:
                guard UInt32(request.cap) <= 100 * UInt32(d.vcpus) else { return .EINVAL }
                host.setSchedulerParameters(id, weight: request.weight == 0 ? now.weight : UInt32(request.weight),
                                            cap: UInt32(request.cap))
            default:
                return .EINVAL
            }
        case .pausedomain, .unpausedomain:
            // Nothing to copy back: Xen answers these in the return value alone.
            if command == .pausedomain {
                guard id != caller else { return .EINVAL }          // a domain may not pause itself
                return host.pause(id)
            }
            return host.unpause(id)
        }
        guard memory.write(op, to: arg) else { return .EFAULT }
        return nil
    }
}
