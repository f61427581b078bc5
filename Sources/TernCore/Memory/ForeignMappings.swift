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
/// slot is marked, so the chains through it stay whole.
public struct ForeignMappings<Owner> {
    private static var empty: UInt64 { .max }
    private static var removed: UInt64 { .max - 1 }
    private var keys: [UInt64] = []
    private var values: [ForeignMapping<Owner>?] = []
    public private(set) var count = 0
    private var used = 0                      // live and removed slots

    public init() {}

    /// Records the mapping at `gfn`; false (and nothing changes) when one is there already.
    public mutating func insert(_ gfn: GuestFrameNumber, _ mapping: ForeignMapping<Owner>) -> Bool {
        if 2 * (used + 1) > keys.count { rehash(to: max(16, count + 1 > keys.count / 4 ? 2 * keys.count : keys.count)) }
        var i = slot(gfn.raw)
        var reuse: Int?
        while keys[i] != Self.empty {
            if keys[i] == gfn.raw { return false }
            if keys[i] == Self.removed && reuse == nil { reuse = i }
            i = (i + 1) & (keys.count - 1)
        }
        let at = reuse ?? i
        if reuse == nil { used += 1 }
        keys[at] = gfn.raw
        values[at] = mapping
        count += 1
        return true
    }

    public func lookup(_ gfn: GuestFrameNumber) -> ForeignMapping<Owner>? {
        find(gfn.raw).flatMap { values[$0] }
    }

    /// Takes the mapping at `gfn` out; nil when there is none.
    public mutating func remove(_ gfn: GuestFrameNumber) -> ForeignMapping<Owner>? {
        guard let i = find(gfn.raw) else { return nil }
        keys[i] = Self.removed
        count -= 1
        defer { values[i] = nil }
        return values[i]
    }

    /// Every mapping, with its frame; the table is left empty.
    public mutating func removeAll() -> [(GuestFrameNumber, ForeignMapping<Owner>)] {
        var all: [(GuestFrameNumber, ForeignMapping<Owner>)] = []
        for i in keys.indices where keys[i] < Self.removed {
            if let v = values[i] { all.append((GuestFrameNumber(keys[i]), v)) }
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
        let (oldKeys, oldValues) = (keys, values)
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [ForeignMapping<Owner>?](repeating: nil, count: size)
        count = 0
        used = 0
        for i in oldKeys.indices where oldKeys[i] < Self.removed {
            var j = slot(oldKeys[i])
            while keys[j] != Self.empty { j = (j + 1) & (size - 1) }
            keys[j] = oldKeys[i]
            values[j] = oldValues[i]
            count += 1
            used += 1
        }
    }
}
