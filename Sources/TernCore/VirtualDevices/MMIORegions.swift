// A domain's emulated devices by guest-physical range, as Xen's MMIO handlers and Bao's emulated
// memory regions: a data abort inside one goes to that device with its offset, one anywhere else is
// the guest's own business (it takes an external abort). Set up once when the domain is built; the
// trap path only looks ranges up, at most a handful, in the order registered (the GIC first: it is
// the busiest).

/// The devices Tern emulates for a guest.
public enum EmulatedDevice: Sendable {
    case gicDistributor, gicRedistributors, uart
}

public struct MMIORegions: Sendable {
    struct Region: Sendable {
        var base: UInt64
        var size: UInt64
        var device: EmulatedDevice
    }

    public static let capacity = 4
    private var regions: (Region, Region, Region, Region)
    public private(set) var count = 0

    public init() {
        let none = Region(base: 0, size: 0, device: .gicDistributor)     // size 0: matches nothing
        regions = (none, none, none, none)
    }

    /// Adds a device at [base, base + size); false (and nothing added) for an empty range, one that
    /// wraps, overlaps another, or one more than `capacity`.
    @discardableResult
    public mutating func register(_ device: EmulatedDevice, base: GuestPhysicalAddress, size: UInt64) -> Bool {
        guard count < Self.capacity, size > 0, base.raw <= UInt64.max - size + 1 else { return false }
        let end = base.raw &+ (size - 1)
        for i in 0 ..< count {
            let r = region(i)
            if base.raw <= r.base &+ (r.size - 1) && r.base <= end { return false }
        }
        let r = Region(base: base.raw, size: size, device: device)
        switch count {
        case 0: regions.0 = r
        case 1: regions.1 = r
        case 2: regions.2 = r
        default: regions.3 = r
        }
        count += 1
        return true
    }

    /// The device whose range holds `address`, and the offset into it. Unrolled: a slot not yet used
    /// has size 0 and matches nothing, and the first (the distributor) costs one compare.
    @inline(__always)
    public func find(_ address: GuestPhysicalAddress) -> (device: EmulatedDevice, offset: UInt64)? {
        let a = address.raw
        if a &- regions.0.base < regions.0.size { return (regions.0.device, a &- regions.0.base) }
        if a &- regions.1.base < regions.1.size { return (regions.1.device, a &- regions.1.base) }
        if a &- regions.2.base < regions.2.size { return (regions.2.device, a &- regions.2.base) }
        if a &- regions.3.base < regions.3.size { return (regions.3.device, a &- regions.3.base) }
        return nil
    }

    /// By a switch, not through the tuple's bytes: that would copy all of it for every look.
    @inline(__always) private func region(_ i: Int) -> Region {
        switch i {
        case 0: regions.0
        case 1: regions.1
        case 2: regions.2
        default: regions.3
        }
    }
}
