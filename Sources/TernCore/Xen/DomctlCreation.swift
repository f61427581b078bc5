// The domctls with which libxl builds a domain on Arm (xen/include/public/domctl.h and arch-arm.h at
// interface 0x15): createdomain and its Arm configuration, the vCPU context the builder starts vCPU 0
// with, and the limits and hints it sets on the way. What Xen 4.17 checks is checked here, in its
// order; the ToolstackHost does the rest.

/// struct xen_domctl_createdomain (68 bytes) with its struct xen_arch_domainconfig at 56.
public struct DomctlCreateDomain {
    public var ssidref: UInt32 = 0
    /// xen_domain_handle_t: the domain's UUID.
    public var handle: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    public var flags: UInt32 = 0
    public var iommuOptions: UInt32 = 0
    public var maxVCPUs: UInt32 = 0
    public var maxEventPort: UInt32 = 0
    public var maxGrantFrames: Int32 = 0
    public var maxMaptrackFrames: Int32 = 0
    public var grantOptions: UInt32 = 0
    public var vmtraceSize: UInt32 = 0
    public var cpupool: UInt32 = 0
    public var gicVersion: UInt8 = 0
    var archPad: UInt8 = 0
    public var teeType: UInt16 = 0
    public var spis: UInt32 = 0
    public var clockFrequency: UInt32 = 0
    public init() {}

    public static let hvm: UInt32 = 1 << 0, hap: UInt32 = 1 << 1
    public static let gicNative: UInt8 = 0, gicV3: UInt8 = 2
}

/// What the hypervisor is asked to create, once the request has passed Xen's checks.
public struct DomainCreation: Equatable, Sendable {
    /// The ID asked for; nil: the next free one (Xen's rover).
    public var requested: DomainID?
    public var vcpus: Int
    public var handle: [UInt8]
    public var ssidref: UInt32
    /// Grant-table frames it may have, at most GrantTableOp.maximumFrames.
    public var grantFrames: Int
    /// Frames of its maptrack (its mappings of others' grants), at most Maptrack.defaultFrames.
    public var maptrackFrames: Int

    public init(requested: DomainID?, vcpus: Int, handle: [UInt8] = [UInt8](repeating: 0, count: 16),
                ssidref: UInt32 = 0, grantFrames: Int = GrantTableOp.maximumFrames,
                maptrackFrames: Int = Maptrack.defaultFrames) {
        self.requested = requested
        self.vcpus = vcpus
        self.handle = handle
        self.ssidref = ssidref
        self.grantFrames = grantFrames
        self.maptrackFrames = maptrackFrames
    }
}

/// struct vcpu_guest_context on arm64 (352 bytes) as the words it is made of: flags, x0-x30, pc, cpsr,
/// spsr_el1, the AArch32 banked SPSRs, sp_el0, sp_el1, elr_el1, sctlr, ttbcr, ttbr0, ttbr1.
public struct VCPUContext: Equatable, Sendable {
    public static let size = 352
    public var x: [UInt64]
    public var pc: UInt64
    public var cpsr: UInt64
    public var spsrEL1: UInt64
    public var spEL0: UInt64
    public var spEL1: UInt64
    public var elrEL1: UInt64
    public var sctlr: UInt64
    public var ttbcr: UInt64
    public var ttbr0: UInt64
    public var ttbr1: UInt64
    /// VGCF_online: the vCPU runs once its domain does.
    public var online: Bool

    public init(words w: [UInt64]) {
        precondition(w.count == VCPUContext.size / 8)
        online = w[0] & 1 != 0
        x = Array(w[1 ... 31])
        pc = w[32]
        cpsr = w[33]
        spsrEL1 = w[34]
        spEL0 = w[37]
        spEL1 = w[38]
        elrEL1 = w[39]
        sctlr = w[40]
        ttbcr = w[41]
        ttbr0 = w[42]
        ttbr1 = w[43]
    }

    /// Xen's is_guest_pv64_psr: AArch64 at EL1h, EL1t or EL0t (Tern runs no AArch32 guests).
    public var hasGuestMode: Bool {
        let mode = cpsr & 0x1F
        return mode == 0b00101 || mode == 0b00100 || mode == 0b00000
    }
}

/// struct xen_domctl_cacheflush (16 bytes).
public struct DomctlCacheFlush {
    public var startFrame: UInt64 = 0
    public var frames: UInt64 = 0
    public init() {}

    /// Xen's limit on one request (1 << MAX_ORDER pages on Arm).
    public static let maximumFrames: UInt64 = 1 << 18
}

extension Domctl {
    /// createdomain: Xen's sanitise_domain_config and Arm's arch_sanitise_domain_config, then the ID
    /// (`requested` when it is above 0 and below the reserved IDs, else the rover's). On success the
    /// request comes back with its domain and the GIC version it got.
    static func createDomain(_ op: inout XenDomctl, _ host: some ToolstackHost) -> XenError? {
        var c = op.payload(as: DomctlCreateDomain.self)
        // hvm and hap, as every Arm domain; the other flags are x86's or need what Tern has not (an
        // IOMMU, nested virtualization, a vPMU, vmtrace).
        guard c.flags == DomctlCreateDomain.hvm | DomctlCreateDomain.hap,
              c.iommuOptions == 0, c.vmtraceSize == 0,
              c.maxVCPUs >= 1, c.maxVCPUs <= UInt32(TernLimits.maximumVCPUsPerDomain),
              c.grantOptions & 0xF == 1,                                // grant table v1 only, as Arm
              // grant_table_init: a negative limit is the default, more than the default is refused.
              c.maxGrantFrames < 0 || (c.maxGrantFrames >= 1 && c.maxGrantFrames <= Int32(GrantTableOp.maximumFrames)),
              c.maxMaptrackFrames <= Int32(Maptrack.defaultFrames),
              c.gicVersion == DomctlCreateDomain.gicNative || c.gicVersion == DomctlCreateDomain.gicV3,
              c.teeType == 0, c.spis <= UInt32(VirtualDistributor.spiCount)
        else { return .EINVAL }
        guard c.cpupool == 0 else { return .ENOENT }
        let asked = op.domain > 0 && UInt32(op.domain) < DomainIDs.firstReserved ? DomainID(op.domain) : nil
        let handle = withUnsafeBytes(of: c.handle) { Array($0) }
        let creation = DomainCreation(requested: asked, vcpus: Int(c.maxVCPUs), handle: handle, ssidref: c.ssidref,
                                      grantFrames: c.maxGrantFrames < 0 ? GrantTableOp.maximumFrames : Int(c.maxGrantFrames),
                                      maptrackFrames: c.maxMaptrackFrames < 0 ? Maptrack.defaultFrames : Int(c.maxMaptrackFrames))
        switch host.create(creation) {
        case .failure(let e):
            return e
        case .success(let id):
            op.domain = id.raw
            c.gicVersion = DomctlCreateDomain.gicV3
            c.clockFrequency = 0
            op.setPayload(c)
            return nil
        }
    }

    /// setvcpucontext: a vCPU of a domain other than the caller's, from the context at the handle (a
    /// null handle resets it, offline, as Xen's vcpu_reset).
    static func setVCPUContext<Memory: GuestMemoryAccess>(_ op: XenDomctl, _ d: DomainSummary, caller: DomainID,
                                                          _ memory: inout Memory, _ host: some ToolstackHost) -> XenError? {
        let vcpu = op.payload(as: UInt32.self)
        let handle = op.payload(as: (UInt64, UInt64).self).1
        guard d.id != caller, vcpu < UInt32(d.vcpus) else { return .EINVAL }
        guard handle != 0 else { return host.setVCPUContext(d.id, vcpu: Int(vcpu), nil) }
        var words = [UInt64](repeating: 0, count: VCPUContext.size / 8)
        let copied = words.withUnsafeMutableBytes { memory.copy(from: VirtualAddress(handle), count: VCPUContext.size, into: $0.baseAddress!) }
        guard copied else { return .EFAULT }
        let context = VCPUContext(words: words)
        guard context.hasGuestMode else { return .EINVAL }
        return host.setVCPUContext(d.id, vcpu: Int(vcpu), context)
    }

    /// setvcpuaffinity with the hard map. The maps come back holding what the vCPU got, as Xen's
    /// vcpu_affinity_domctl writes them.
    static func setVCPUAffinity<Memory: GuestMemoryAccess>(_ op: XenDomctl, _ d: DomainSummary, _ memory: inout Memory,
                                                           _ host: some ToolstackHost) -> XenError? {
        let request = op.payload(as: DomctlVCPUAffinity.self)
        guard request.flags & (DomctlVCPUAffinity.hard | DomctlVCPUAffinity.soft) != 0 else { return .EINVAL }
        guard request.vcpu < UInt32(d.vcpus) else { return .EINVAL }
        let all = Sysctl.cpuMask(host.machine.cpus)
        var hard = all
        if request.flags & DomctlVCPUAffinity.hard != 0 {
            guard let asked = Sysctl.readCPUMap(request.hardMap, bits: request.hardBits, &memory) else { return .EFAULT }
            guard asked & all != 0 else { return .EINVAL }
            guard let got = host.setVCPUAffinity(d.id, vcpu: Int(request.vcpu), hard: asked & all) else { return .ESRCH }
            hard = got
            guard Sysctl.writeCPUMap(request.hardMap, bits: request.hardBits, mask: hard, &memory) else { return .EFAULT }
        }
        // Tern has no soft affinity: every CPU, which Xen reports as what is left of it within the hard.
        if request.flags & DomctlVCPUAffinity.soft != 0 {
            guard Sysctl.writeCPUMap(request.softMap, bits: request.softBits, mask: hard, &memory) else { return .EFAULT }
        }
        return nil
    }
}
