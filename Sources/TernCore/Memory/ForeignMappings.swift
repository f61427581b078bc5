// The pages of other domains one domain has in its stage 2 (Xen's p2m_map_foreign entries), by the
// frame they sit at: dom0's privcmd maps thousands of a new domain's pages at once (its kernel, its
// ramdisk) and unmaps them one by one, so finding one is a hash lookup, not a scan. Each mapping holds
// its owner: the owner's memory is not released while any remains (the hypervisor counts them there).
// No Dictionary: the hypervisor links no floating point, which a Dictionary's sizing needs.

/// One page of `owner`'s (the hypervisor keeps its Domain here, so letting go needs no lookup).
public struct ForeignMapping<Owner> {
    public var owner: Owner
    public var frame: HostPhysicalAddress

    public init(owner: Owner, frame: HostPhysicalAddress) {
        self.owner = owner
        self.frame = frame
    }
}

extension ForeignMapping: Equatable where Owner: Equatable {}

/// Open addressing with linear probing over a power-of-two table, grown at half full; a removed
/// slot is marked, so the chains through it stay whole. Its three arrays (keys, owners, frames) are
/// 8 bytes a slot each, and none grows past `maximumSlots`: a block the hypervisor's heap can give.
public struct ForeignMappings<Owner> {
    private static var empty: UInt64 { .max }
    private static var removed: UInt64 { .max - 1 }
    /// 2^16 slots: 512 KiB an array (a 1 MiB block of the hypervisor's heap with its header), so at
    /// least 2^14 (64 MiB of pages) and up to 2^15 mappings (128 MiB).
    public static var maximumSlots: Int { 1 << 16 }
    private var keys: [UInt64] = []
    private var owners: [Owner?] = []
    private var frames: [UInt64] = []
    public private(set) var count = 0
    private var used = 0                      // live and removed slots

    public init() {}

    public enum Insertion: Equatable, Sendable { case added, present, full }

    /// Records the mapping at `gfn`: `.present` (and nothing changes) when one is there already,
    /// `.full` when the table may not grow further.
    public mutating func insert(_ gfn: GuestFrameNumber, _ mapping: ForeignMapping<Owner>) -> Insertion {
        if lookup(gfn) != nil { return .present }
        if 2 * (used + 1) > keys.count {
            // Grown when live entries fill a quarter, else only cleared of removed slots.
            var size = max(16, 4 * (count + 1) > keys.count ? 2 * keys.count : keys.count)
            if size > Self.maximumSlots {
                // At the largest size: clearing the removed slots may make room, when there are enough
                // of them to be worth the copy.
                guard 2 * (count + 1) <= keys.count, used - count >= keys.count / 8 else { return .full }
                size = keys.count
            }
            rehash(to: size)
        }
        var i = slot(gfn.raw)
        while keys[i] != Self.empty && keys[i] != Self.removed { i = (i + 1) & (keys.count - 1) }
        if keys[i] == Self.empty { used += 1 }
        keys[i] = gfn.raw
        owners[i] = mapping.owner
        frames[i] = mapping.frame.raw
        count += 1
        return .added
    }

    /// The bytes each of the three arrays may take at the next insert (0 when it will not grow): the
    /// hypervisor makes room in its heap before it takes the lock that guards the table.
    public var nextArrayBytes: Int {
        guard 2 * (used + 1) > keys.count else { return 0 }
        return 8 * max(16, 2 * keys.count)
    }

    public func lookup(_ gfn: GuestFrameNumber) -> ForeignMapping<Owner>? {
        guard let i = find(gfn.raw), let owner = owners[i] else { return nil }
        return ForeignMapping(owner: owner, frame: HostPhysicalAddress(frames[i]))
    }

    /// Takes the mapping at `gfn` out; nil when there is none.
    public mutating func remove(_ gfn: GuestFrameNumber) -> ForeignMapping<Owner>? {
        guard let i = find(gfn.raw), let owner = owners[i] else { return nil }
        keys[i] = Self.removed
        owners[i] = nil
        count -= 1
        return ForeignMapping(owner: owner, frame: HostPhysicalAddress(frames[i]))
    }

    /// Every mapping, with its frame; the table is left empty.
    public mutating func removeAll() -> [(GuestFrameNumber, ForeignMapping<Owner>)] {
        var all: [(GuestFrameNumber, ForeignMapping<Owner>)] = []
        for i in keys.indices where keys[i] < Self.removed {
            if let owner = owners[i] { all.append((GuestFrameNumber(keys[i]), ForeignMapping(owner: owner, frame: HostPhysicalAddress(frames[i])))) }
        }
        self = ForeignMappings()
        return all
    }

    private func slot(_ key: UInt64) -> Int {
        // Fibonacci hashing: neighbouring frames, the usual case, spread over the table.
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & (keys.count - 1)
    }

    private func find(_ key: UInt64) -> Int? {
        guard !keys.isEmpty else { return nil }
        var i = slot(key)
        while keys[i] != Self.empty {
            if keys[i] == key { return i }
            i = (i + 1) & (keys.count - 1)
        }
        return nil
    }

    private mutating func rehash(to size: Int) {
        let (oldKeys, oldOwners, oldFrames) = (keys, owners, frames)
        keys = []
        owners = []
        frames = []
        keys = [UInt64](repeating: Self.empty, count: size)
        owners = [Owner?](repeating: nil, count: size)
        frames = [UInt64](repeating: 0, count: size)
        count = 0
        used = 0
        for i in oldKeys.indices where oldKeys[i] < Self.removed {
            var j = slot(oldKeys[i])
            while keys[j] != Self.empty { j = (j + 1) & (size - 1) }
            keys[j] = oldKeys[i]
            owners[j] = oldOwners[i]
            frames[j] = oldFrames[i]
            count += 1
            used += 1
        }
    }
}
