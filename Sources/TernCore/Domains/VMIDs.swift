// How many domains a machine can hold at once. Each domain's stage-2 translations are tagged in the
// TLBs with its VMID, and two live domains must never share one, so on Arm the VMID width is the
// limit, as in Xen (p2m_alloc_vmid): 8 bits on CPUs such as the Cortex-A57 of `tern run`'s QEMU
// machine, 16 on those that have them (ID_AA64MMFR1_EL1.VMIDBits), where Xen's domain IDs become the
// tighter bound. A domain's VMID is its table slot plus one; VMID 0 tags no domain.

public struct VMIDs: Equatable, Sendable {
    /// 8 or 16.
    public let bits: Int

    /// The width the CPU offers, from ID_AA64MMFR1_EL1 (VMIDBits, bits 7:4: 0b0010 is 16 bits).
    public init(mmfr1: UInt64) { bits = (mmfr1 >> 4) & 0xF == 0b0010 ? 16 : 8 }

    public init(bits: Int) {
        precondition(bits == 8 || bits == 16)
        self.bits = bits
    }

    /// The 8-bit VMIDs of the Cortex-A57 that `tern run` boots.
    public static let cortexA57 = VMIDs(bits: 8)

    /// VTCR_EL2.VS (bit 19): the stage-2 walks use all 16 bits of VTTBR_EL2.VMID.
    public var vtcrBits: UInt64 { bits == 16 ? 1 << 19 : 0 }

    /// Domains that can live at once: one per VMID but 0, and no more than Xen's domain IDs
    /// (0 ..< DOMID_FIRST_RESERVED).
    public var domainLimit: Int { min((1 << bits) - 1, Int(DomainIDs.firstReserved)) }

    /// The VMID of the domain in table slot `slot` (below `domainLimit`).
    @inlinable public func vmid(slot: Int) -> UInt64 { UInt64(slot + 1) }
}
