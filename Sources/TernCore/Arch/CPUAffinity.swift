// A physical CPU's name in the architecture: its MPIDR affinity (Aff3.Aff2.Aff1.Aff0), as the device
// tree's cpu nodes give it. The GIC names CPUs the same way in three other layouts: a redistributor's
// GICR_TYPER packs the four levels into 32 bits, and an SGI (ICC_SGI1R_EL1) names its target by
// Aff3.Aff2.Aff1 and a bit for Aff0 in a 16-wide target list (Aff0 / 16 is the range selector). Getting
// these right is what lets Tern run on CPUs beyond the first cluster.

public struct CPUAffinity: Hashable, Sendable {
    /// MPIDR_EL1's affinity fields: Aff0 in bits 7:0, Aff1 15:8, Aff2 23:16, Aff3 39:32.
    public let raw: UInt64

    public static let fieldMask: UInt64 = 0xFF_00FF_FFFF

    public init(mpidr: UInt64) { raw = mpidr & Self.fieldMask }

    /// A cpu node's `reg` (one or two cells): the MPIDR's affinity fields, per the Arm cpus binding.
    public init?(deviceTreeReg reg: UInt64) {
        guard reg & ~Self.fieldMask == 0 else { return nil }
        raw = reg
    }

    /// vCPU `index`'s affinity, as Xen gives it (vcpuid_to_vaffinity): Aff0 holds the low 4 bits, so
    /// one SGI target list reaches 16 vCPUs, and Aff1 the rest.
    public init(vcpu index: Int) { raw = UInt64(index >> 4 & 0xFF) << 8 | UInt64(index & 0xF) }

    /// The vCPU index this affinity names (the inverse of init(vcpu:)); nil for one no vCPU has.
    @inlinable public var vcpuIndex: Int? {
        // Aff0 below 16, Aff2 and Aff3 zero: Aff1.Aff0 then reads as the index in hexadecimal digits.
        guard raw & 0xFF_00FF_00F0 == 0 else { return nil }
        return Int(raw >> 4 & 0xFF0 | raw & 0xF)
    }

    public var aff0: UInt64 { raw & 0xFF }
    public var aff1: UInt64 { raw >> 8 & 0xFF }
    public var aff2: UInt64 { raw >> 16 & 0xFF }
    public var aff3: UInt64 { raw >> 32 & 0xFF }

    /// As GICR_TYPER[63:32] names the CPU a redistributor serves: Aff3.Aff2.Aff1.Aff0, 8 bits each.
    public var redistributorAffinity: UInt64 { aff3 << 24 | aff2 << 16 | aff1 << 8 | aff0 }

    /// ICC_SGI1R_EL1 for SGI `intid` to this CPU alone: Aff3 in 55:48, range selector (Aff0 / 16)
    /// in 47:44, Aff2 in 39:32, the INTID in 27:24, Aff1 in 23:16 and Aff0's bit in the target list.
    public func sgi(_ intid: UInt64) -> UInt64 {
        aff3 << 48 | (aff0 >> 4) << 44 | aff2 << 32 | (intid & 0xF) << 24 | aff1 << 16 | 1 << (aff0 & 0xF)
    }

    /// The CPUs an SGI register value names, out of `cpus` (Tern's own, to check the encoding).
    public static func targets(ofSGI value: UInt64, among cpus: [CPUAffinity]) -> [CPUAffinity] {
        let list = value & 0xFFFF
        let range = value >> 44 & 0xF
        return cpus.filter { c in
            c.aff3 == value >> 48 & 0xFF && c.aff2 == value >> 32 & 0xFF && c.aff1 == value >> 16 & 0xFF
                && c.aff0 >> 4 == range && list & (1 << (c.aff0 & 0xF)) != 0
        }
    }
}
