// A guest's ICC_SGI1R_EL1 write, GICv3's way to send a software-generated interrupt: to every other
// online vCPU of the domain (IRM), or to those a 16-wide target list names within one Aff3.Aff2.Aff1
// group. vCPUs are named by the affinities Xen gives them (CPUAffinity(vcpu:)).

public enum VirtualSGI {
    /// ICC_SGI1R_EL1.IRM: to every PE but the sender.
    public static let everyoneElse: UInt64 = 1 << 40
    /// The most vCPUs `targets` can name (one bit each).
    public static let maximumVCPUs = 64

    /// The SGI's INTID (0-15).
    @inlinable public static func intid(of value: UInt64) -> Int { Int(value >> 24 & 0xF) }

    /// Whether `value` names vCPU `index` and no other (an SGI to itself, when `index` is the sender):
    /// `targets` would answer that vCPU alone, found without looking at the domain.
    @inlinable public static func namesOnly(_ index: Int, _ value: UInt64) -> Bool {
        index < 16 && value & ~(0xF << 24) == 1 << UInt64(index)
    }

    /// The vCPUs (bit i: vCPU i) that the write of `value` by vCPU `sender` sends its SGI to. As Xen's
    /// vgic_to_sgi, a vCPU that does not exist or is off is left out.
    @inline(__always)
    public static func targets<Domain: VirtualCPUs>(of value: UInt64, from sender: Int, _ domain: Domain) -> UInt64 {
        let count = min(domain.vcpuCount, maximumVCPUs)
        if value & everyoneElse != 0 {
            var all: UInt64 = 0
            for target in 0 ..< count where target != sender && domain.isOnline(target) { all |= 1 << UInt64(target) }
            return all
        }
        // Aff0 of a vCPU is below 16, so a nonzero range selector names none; nor does Aff2 or Aff3.
        guard value >> 44 & 0xF == 0, value >> 32 & 0xFF == 0, value >> 48 & 0xFF == 0 else { return 0 }
        let first = Int(value >> 16 & 0xFF) << 4
        guard first < count else { return 0 }
        var targets = (value & 0xFFFF) << UInt64(first)
        if count < maximumVCPUs { targets &= 1 << UInt64(count) - 1 }
        // The sender is on (it runs), so a self-IPI, the common case, looks nothing up.
        var others = targets & ~(1 << UInt64(sender))
        while others != 0 {
            let target = others.trailingZeroBitCount
            others &= others - 1
            if !domain.isOnline(target) { targets &= ~(1 << UInt64(target)) }
        }
        return targets
    }
}
