// The guest-visible GICv3 distributor and redistributors, as register state. The CPU interface is not
// here: guests use the hardware's virtual CPU interface (ICH_*) directly. What these registers decide
// is which interrupts a guest has enabled, and so which the hypervisor may deliver.

/// Identification values Xen's vGICv3 reports, so guests see the same device under both.
public enum VirtualGICIdentity {
    public static let iidr: UInt64 = 0x34C
    public static let pidr2: UInt64 = 0x3B
    static func idRegister(_ offset: Int) -> UInt64 {
        switch offset {
        case 0xFFD0: 0x04        // PIDR4
        case 0xFFE0: 0x92        // PIDR0
        case 0xFFE4: 0xB4        // PIDR1
        case 0xFFE8: pidr2
        case 0xFFF0: 0x0D        // CIDR0..3
        case 0xFFF4: 0xF0
        case 0xFFF8: 0x05
        case 0xFFFC: 0xB1
        default: 0
        }
    }
}

public struct VirtualDistributor {
    /// Shared peripheral interrupts offered to guests: INTIDs 32 ..< 32 + spiCount.
    public static let spiCount = 64
    public static let size: UInt64 = 0x10000
    public private(set) var control: UInt32 = 0
    /// One word per 32 INTIDs; word 0 (SGIs/PPIs) lives in the redistributors.
    public private(set) var enabled = [UInt32](repeating: 0, count: 1 + spiCount / 32)
    public private(set) var pending = [UInt32](repeating: 0, count: 1 + spiCount / 32)
    var priority = [UInt8](repeating: 0, count: 32 + spiCount)
    var configuration = [UInt32](repeating: 0, count: (32 + spiCount) / 16)
    var routes = [UInt64](repeating: 0, count: spiCount)

    public init() {}

    public func isEnabled(_ intid: Int) -> Bool {
        guard intid >= 32, intid < 32 + Self.spiCount else { return false }
        return enabled[intid / 32] & (1 << UInt32(intid % 32)) != 0
    }

    public var groupEnabled: Bool { control & 0x2 != 0 }

    /// A register read; nil for an offset or size the architecture does not allow (the guest gets an abort).
    /// `mutating` only so the hypervisor can call it in place on the copy its domain holds, instead of
    /// copying the whole distributor for every trapped read; it changes nothing.
    public mutating func read(offset: Int, size: Int) -> UInt64? {
        switch offset {
        case 0x0000 where size == 4: return UInt64(control) | 1 << 6 | 1 << 4   // DS and ARE are fixed
        case 0x0004 where size == 4:
            return UInt64(Self.spiCount / 32) | 9 << 19                           // ITLinesNumber, IDbits = 10 bits
        case 0x0008 where size == 4: return VirtualGICIdentity.iidr
        case 0x0080 ..< 0x0100 where size == 4: return 0xFFFF_FFFF              // all group 1
        case 0x0100 ..< 0x0180 where size == 4, 0x0180 ..< 0x0200 where size == 4:
            return UInt64(word(enabled, offset & 0x7F))
        case 0x0200 ..< 0x0280 where size == 4, 0x0280 ..< 0x0300 where size == 4:
            return UInt64(word(pending, offset & 0x7F))
        case 0x0300 ..< 0x0400 where size == 4: return 0
        case 0x0400 ..< 0x0800:
            return bytes(priority, offset - 0x400, size)
        case 0x0C00 ..< 0x0D00 where size == 4:
            let i = (offset - 0xC00) / 4
            return i < configuration.count ? UInt64(configuration[i]) : 0
        case 0x0D00 ..< 0x0E00 where size == 4: return 0
        case 0x6100 ..< 0x8000 where size == 8:
            let i = (offset - 0x6100) / 8
            return i < routes.count ? routes[i] : 0
        case 0xFFD0 ... 0xFFFC where size == 4: return VirtualGICIdentity.idRegister(offset)
        default: return size == 4 || size == 8 ? 0 : nil
        }
    }

    /// A register write. Returns the INTIDs (one word's worth, with its base) that became both enabled
    /// and pending, so the caller can deliver them.
    @discardableResult
    public mutating func write(offset: Int, size: Int, value: UInt64) -> (base: Int, bits: UInt32)? {
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case 0x0000 where size == 4: control = v & 0x3
        case 0x0100 ..< 0x0180 where size == 4:
            let i = (offset - 0x100) / 4
            guard i >= 1, i < enabled.count else { return nil }
            enabled[i] |= v
            return ready(i)
        case 0x0180 ..< 0x0200 where size == 4:
            let i = (offset - 0x180) / 4
            if i >= 1, i < enabled.count { enabled[i] &= ~v }
        case 0x0200 ..< 0x0280 where size == 4:
            let i = (offset - 0x200) / 4
            guard i >= 1, i < pending.count else { return nil }
            pending[i] |= v
            return ready(i)
        case 0x0280 ..< 0x0300 where size == 4:
            let i = (offset - 0x280) / 4
            if i >= 1, i < pending.count { pending[i] &= ~v }
        case 0x0400 ..< 0x0800:
            setBytes(&priority, offset - 0x400, size, value)
        case 0x0C00 ..< 0x0D00 where size == 4:
            let i = (offset - 0xC00) / 4
            if i >= 2, i < configuration.count { configuration[i] = v }
        case 0x6100 ..< 0x8000 where size == 8:
            let i = (offset - 0x6100) / 8
            if i < routes.count { routes[i] = value & 0xFF_0000_FFFF_FFFF }
        default: break
        }
        return nil
    }

    /// Marks an SPI pending (a device raised it); true when the guest has it enabled, i.e. deliverable now.
    public mutating func raise(_ intid: Int) -> Bool {
        guard intid >= 32, intid < 32 + Self.spiCount else { return false }
        pending[intid / 32] |= 1 << UInt32(intid % 32)
        return isEnabled(intid)
    }

    /// A level-triggered SPI's line fell before the interrupt was handed to a vCPU: it is no longer pending.
    public mutating func lower(_ intid: Int) {
        delivered(intid)
    }

    /// The vCPU an SPI goes to: the one whose affinity IROUTER names, or Int.max when none has it (the
    /// SPI is then delivered to nobody, as the GIC architecture has it; Xen ignores such a write and
    /// keeps the old target); 1-of-N routing picks vCPU 0.
    public func target(of intid: Int) -> Int {
        guard intid >= 32, intid < 32 + Self.spiCount else { return 0 }
        let route = routes[intid - 32]
        return route & (1 << 31) != 0 ? 0 : CPUAffinity(mpidr: route).vcpuIndex ?? .max
    }

    /// SPIs pending, enabled and routed to `vcpu`, bit n standing for INTID 32 + n.
    public func deliverable(to vcpu: Int) -> UInt64 {
        var bits = UInt64(enabled[1] & pending[1]) | UInt64(enabled[2] & pending[2]) << 32
        var result: UInt64 = 0
        while bits != 0 {
            let n = bits.trailingZeroBitCount
            if target(of: 32 + n) == vcpu { result |= 1 << UInt64(n) }
            bits &= bits - 1
        }
        return result
    }

    /// The hypervisor handed the interrupt to a vCPU: it is no longer pending here.
    public mutating func delivered(_ intid: Int) {
        guard intid >= 32, intid < 32 + Self.spiCount else { return }
        pending[intid / 32] &= ~(1 << UInt32(intid % 32))
    }

    public func priority(of intid: Int) -> UInt8 { intid < priority.count ? priority[intid] : 0xA0 }

    private mutating func ready(_ i: Int) -> (base: Int, bits: UInt32)? {
        let bits = enabled[i] & pending[i]
        return bits == 0 ? nil : (i * 32, bits)
    }

    private func word(_ words: [UInt32], _ byteOffset: Int) -> UInt32 {
        let i = byteOffset / 4
        return i >= 1 && i < words.count ? words[i] : 0
    }
}

public struct VirtualRedistributor {
    /// Each vCPU's redistributor is two 64 KiB frames: RD_base, then SGI_base.
    public static let stride: UInt64 = 0x20000
    public let vcpu: Int
    public let isLast: Bool
    public private(set) var enabled: UInt32 = 0
    public private(set) var pending: UInt32 = 0
    var priority = [UInt8](repeating: 0, count: 32)
    var configuration1: UInt32 = 0
    var waker: UInt32 = 0x6   // ProcessorSleep and ChildrenAsleep until the guest wakes it

    public init(vcpu: Int, isLast: Bool) {
        self.vcpu = vcpu
        self.isLast = isLast
    }

    public func isEnabled(_ intid: Int) -> Bool { intid < 32 && enabled & (1 << UInt32(intid)) != 0 }

    /// `mutating` for the same reason as the distributor's; it changes nothing.
    public mutating func read(offset: Int, size: Int) -> UInt64? {
        switch offset {
        case 0x0000 where size == 4: return 0
        case 0x0004 where size == 4: return VirtualGICIdentity.iidr
        case 0x0008 where size == 8:
            // GICR_TYPER: the vCPU's affinity (as its MPIDR has it), its number, and Last.
            return CPUAffinity(vcpu: vcpu).redistributorAffinity << 32 | UInt64(vcpu) << 8 | (isLast ? 1 << 4 : 0)
        case 0x000C where size == 4: return CPUAffinity(vcpu: vcpu).redistributorAffinity
        case 0x0014 where size == 4: return UInt64(waker)
        case 0xFFD0 ... 0xFFFC where size == 4: return VirtualGICIdentity.idRegister(offset)
        case 0x10080 where size == 4: return 0xFFFF_FFFF
        case 0x10100 where size == 4, 0x10180 where size == 4: return UInt64(enabled)
        case 0x10200 where size == 4, 0x10280 where size == 4: return UInt64(pending)
        case 0x10400 ..< 0x10420: return bytes(priority, offset - 0x10400, size)
        case 0x10C00 where size == 4: return 0xAAAA_AAAA    // SGIs are edge-triggered
        case 0x10C04 where size == 4: return UInt64(configuration1)
        default: return size == 4 || size == 8 ? 0 : nil
        }
    }

    /// Returns the SGI/PPI bits that became enabled and pending.
    @discardableResult
    public mutating func write(offset: Int, size: Int, value: UInt64) -> UInt32 {
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case 0x0014 where size == 4:
            waker = v & 0x2
            waker |= (waker & 0x2) << 1          // ChildrenAsleep follows ProcessorSleep at once
        case 0x10100 where size == 4:
            enabled |= v
            return enabled & pending
        case 0x10180 where size == 4: enabled &= ~v
        case 0x10200 where size == 4:
            pending |= v
            return enabled & pending
        case 0x10280 where size == 4: pending &= ~v
        case 0x10400 ..< 0x10420: setBytes(&priority, offset - 0x10400, size, value)
        case 0x10C04 where size == 4: configuration1 = v
        default: break
        }
        return 0
    }

    /// An SGI or PPI was raised for this vCPU; true when it is deliverable now.
    public mutating func raise(_ intid: Int) -> Bool {
        guard intid < 32 else { return false }
        pending |= 1 << UInt32(intid)
        return isEnabled(intid)
    }

    public mutating func delivered(_ intid: Int) {
        if intid < 32 { pending &= ~(1 << UInt32(intid)) }
    }

    /// Pending and enabled, waiting for a list register.
    public var deliverable: UInt32 { enabled & pending }

    public func priority(of intid: Int) -> UInt8 { intid < 32 ? priority[intid] : 0xA0 }
}

/// Little-endian byte-lane access to a byte array (priority registers allow 1-, 2-, 4- and 8-byte access).
private func bytes(_ array: [UInt8], _ start: Int, _ size: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0 ..< size where start + i < array.count {
        v |= UInt64(array[start + i]) << UInt64(8 * i)
    }
    return v
}

private func setBytes(_ array: inout [UInt8], _ start: Int, _ size: Int, _ value: UInt64) {
    for i in 0 ..< size where start + i < array.count {
        array[start + i] = UInt8(truncatingIfNeeded: value >> UInt64(8 * i))
    }
}
