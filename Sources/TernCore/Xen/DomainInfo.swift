// What the toolstack learns about a domain (struct xen_domctl_getdomaininfo, xen/include/public/
// domctl.h at interface 0x15): sysctl's getdomaininfolist returns an array of them, domctl's
// getdomaininfo one. `xl list`'s columns come from here (memory, vCPUs, state, time).

/// struct xen_domctl_getdomaininfo: 120 bytes, checked field by field against Xen 4.17's header.
public struct XenDomainInfo {
    public var domain: UInt16 = 0
    var pad1: UInt16 = 0
    /// XEN_DOMINF_*, with the shutdown code in bits 16-23.
    public var flags: UInt32 = 0
    public var totalPages: UInt64 = 0
    public var maxPages: UInt64 = 0
    public var outstandingPages: UInt64 = 0
    public var sharedPages: UInt64 = 0
    public var pagedPages: UInt64 = 0
    public var sharedInfoFrame: UInt64 = 0
    /// Nanoseconds of CPU time its vCPUs have had.
    public var cpuTime: UInt64 = 0
    public var onlineVCPUs: UInt32 = 0
    public var maxVCPUID: UInt32 = 0
    public var ssidref: UInt32 = 0
    /// xen_domain_handle_t: the domain's UUID (16 bytes at offset 76, so 4-byte words).
    public var handle: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
    public var cpupool: UInt32 = 0
    public var guestAddressBits: UInt8 = 0
    var pad2: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0)
    /// struct xen_arch_domainconfig: gic_version, tee_type, nr_spis, clock_frequency.
    public var gicVersion: UInt8 = 0
    var archPad: UInt8 = 0
    public var teeType: UInt16 = 0
    public var spis: UInt32 = 0
    public var clockFrequency: UInt32 = 0
    var tailPad: UInt32 = 0

    public init() {}

    public static let dying: UInt32 = 1 << 0
    public static let hvmGuest: UInt32 = 1 << 1
    public static let shutdown: UInt32 = 1 << 2
    public static let paused: UInt32 = 1 << 3
    public static let blocked: UInt32 = 1 << 4
    public static let running: UInt32 = 1 << 5
    public static let hap: UInt32 = 1 << 8
    public static let shutdownShift: UInt32 = 16
}

/// A domain as the hypervisor sees it, for the toolstack's view of it.
public struct DomainSummary: Equatable, Sendable {
    public var id: DomainID
    public var dying: Bool
    /// SHUTDOWN_* of a domain that has shut down.
    public var shutdownReason: UInt32?
    public var paused: Bool
    /// vCPUs on a CPU now; online vCPUs all blocked.
    public var running: Bool
    public var allBlocked: Bool
    public var pages: UInt64
    public var maxPages: UInt64
    public var sharedInfoFrame: UInt64
    public var cpuTime: Nanoseconds
    public var onlineVCPUs: Int
    public var vcpus: Int
    public var spis: UInt32
    /// Its UUID (16 bytes) and security label, as the toolstack created it.
    public var handle: [UInt8]
    public var ssidref: UInt32

    public init(id: DomainID, dying: Bool = false, shutdownReason: UInt32? = nil, paused: Bool = false,
                running: Bool = false, allBlocked: Bool = false, pages: UInt64 = 0, maxPages: UInt64 = 0,
                sharedInfoFrame: UInt64 = 0, cpuTime: Nanoseconds = 0, onlineVCPUs: Int = 1, vcpus: Int = 1,
                spis: UInt32 = 0, handle: [UInt8] = [UInt8](repeating: 0, count: 16), ssidref: UInt32 = 0) {
        self.handle = handle
        self.ssidref = ssidref
        self.id = id
        self.dying = dying
        self.shutdownReason = shutdownReason
        self.paused = paused
        self.running = running
        self.allBlocked = allBlocked
        self.pages = pages
        self.maxPages = maxPages
        self.sharedInfoFrame = sharedInfoFrame
        self.cpuTime = cpuTime
        self.onlineVCPUs = onlineVCPUs
        self.vcpus = vcpus
        self.spis = spis
    }
}

extension XenDomainInfo {
    /// XEN_DOMCTL_CONFIG_GIC_V3: every Tern domain has a GICv3.
    public static let gicV3: UInt8 = 2
    /// The guest physical address bits of Tern's stage 2.
    public static let ternGuestAddressBits = UInt8(GuestLayout.addressBits)

    /// Xen's getdomaininfo for `d`. As on Xen for Arm, every domain is an HVM guest with hardware
    /// paging; "running" when a vCPU is on a CPU, "blocked" when every online vCPU waits (for an
    /// event: a paused one that is not waiting does not count), neither without online vCPUs.
    public init(_ d: DomainSummary) {
        self.init()
        domain = d.id.raw
        var f = XenDomainInfo.hvmGuest | XenDomainInfo.hap
        if d.dying { f |= XenDomainInfo.dying }
        if let reason = d.shutdownReason {
            f |= XenDomainInfo.shutdown | (reason & 0xFF) << XenDomainInfo.shutdownShift
        }
        if d.paused { f |= XenDomainInfo.paused }
        if d.onlineVCPUs > 0 && d.running { f |= XenDomainInfo.running }
        if d.onlineVCPUs > 0 && d.allBlocked && !d.running { f |= XenDomainInfo.blocked }
        flags = f
        totalPages = d.pages
        maxPages = d.maxPages
        sharedInfoFrame = d.sharedInfoFrame
        cpuTime = d.cpuTime.raw
        onlineVCPUs = UInt32(d.onlineVCPUs)
        maxVCPUID = d.vcpus == 0 ? .max : UInt32(d.vcpus - 1)
        guestAddressBits = XenDomainInfo.ternGuestAddressBits
        gicVersion = XenDomainInfo.gicV3
        spis = d.spis
        self.ssidref = d.ssidref
        withUnsafeMutableBytes(of: &handle) { h in
            for (i, byte) in d.handle.prefix(16).enumerated() { h[i] = byte }
        }
    }
}
