// The rules of a v1 grant entry (struct grant_entry_v1: flags, domid, frame), which lives in a page the
// granting guest writes too: what another domain may do with it, and how the hypervisor marks it in use.
// The flags and domid form the entry's first 32-bit word, which the hypervisor changes only by
// compare-and-swap, so a guest revoking the grant at the same moment either wins or sees it busy.

/// GNTST_* results, as Xen writes them in each operation's status field.
public enum GrantStatus: Int16, Sendable {
    case okay = 0, generalError = -1, badDomain = -2, badGrantRef = -3, badHandle = -4, badVirtualAddress = -5
    case noDeviceSpace = -7, permissionDenied = -8, badPage = -9, badCopyArgument = -10
}

public enum GrantFlags {
    public static let permitAccess: UInt16 = 1
    public static let typeMask: UInt16 = 3
    public static let readOnly: UInt16 = 1 << 2
    public static let reading: UInt16 = 1 << 3
    public static let writing: UInt16 = 1 << 4
}

/// GNTMAP_* bits of gnttab_map_grant_ref.flags, and GNTCOPY_* of gnttab_copy.flags.
public enum GrantMapFlags {
    public static let deviceMap: UInt32 = 1 << 0
    public static let hostMap: UInt32 = 1 << 1
    public static let readOnly: UInt32 = 1 << 2
    public static let containsPTE: UInt32 = 1 << 4
}

/// gnttab_cache_flush.op (GNTTAB_CACHE_*).
public enum GrantCacheOp {
    public static let clean: UInt32 = 1 << 0
    public static let invalidate: UInt32 = 1 << 1
    /// The address is a grant reference; Xen does not implement it either.
    public static let sourceGrant: UInt32 = 1 << 31
}

public enum GrantCopyFlags {
    public static let sourceGrant: UInt16 = 1 << 0
    public static let destinationGrant: UInt16 = 1 << 1
}

public enum GrantAccess {
    /// Entries of 8 bytes, 512 to a page.
    public static let entriesPerFrame = 512
    public static let entrySize = 8

    /// The entry's header word (flags in the low half, domid in the high) as it must become for `user`
    /// to use it, read-only or not; the failure when the grant does not allow it (GNTST_general_error,
    /// as Xen answers both a wrong entry and a write to a read-only one). `mark` sets
    /// GTF_reading (and GTF_writing for a writable use), as Xen does while a mapping exists.
    public static func claim(header: UInt32, by user: DomainID, readOnly: Bool, mark: Bool) -> Result<UInt32, GrantStatusError> {
        let flags = UInt16(truncatingIfNeeded: header)
        let domid = UInt16(truncatingIfNeeded: header >> 16)
        guard flags & GrantFlags.typeMask == GrantFlags.permitAccess, domid == user.raw else {
            return .failure(GrantStatusError(.generalError))
        }
        guard readOnly || flags & GrantFlags.readOnly == 0 else { return .failure(GrantStatusError(.generalError)) }
        guard mark else { return .success(header) }
        let used = GrantFlags.reading | (readOnly ? 0 : GrantFlags.writing)
        return .success(header | UInt32(used))
    }
}

public struct GrantStatusError: Error, Equatable, Sendable {
    public let status: GrantStatus
    public init(_ status: GrantStatus) { self.status = status }
}

/// How many mappings of each of a domain's grants other domains hold: what GTF_reading and GTF_writing
/// must say, and whether the domain's memory must outlive the domain (it does while any is mapped).
public struct ActiveGrants: Sendable {
    /// Few grants are mapped at once (a ring, a console page), so a short list serves.
    private var uses: [(ref: GrantRef, readers: Int, writers: Int)] = []
    public private(set) var total = 0

    public init() {}

    /// Xen counts each kind of use in a byte (its GNTPIN_* counters) and refuses one that could
    /// overflow it, GNTST_general_error to the caller: so does Tern, at the same count.
    public static let usesOfAKind = 128

    /// Takes a use; false (nothing taken) when the grant already has `usesOfAKind` of that kind.
    public mutating func add(_ ref: GrantRef, readOnly: Bool) -> Bool {
        let i = uses.firstIndex { $0.ref == ref } ?? { uses.append((ref, 0, 0)); return uses.count - 1 }()
        guard (readOnly ? uses[i].readers : uses[i].writers) < Self.usesOfAKind else { return false }
        if readOnly { uses[i].readers += 1 } else { uses[i].writers += 1 }
        total += 1
        return true
    }

    /// Drops one use; returns the flags no longer true of the entry (to clear in it).
    public mutating func remove(_ ref: GrantRef, readOnly: Bool) -> UInt16 {
        guard let i = uses.firstIndex(where: { $0.ref == ref }) else { return 0 }
        if readOnly { uses[i].readers = max(uses[i].readers - 1, 0) } else { uses[i].writers = max(uses[i].writers - 1, 0) }
        total = max(total - 1, 0)
        var stale: UInt16 = 0
        if uses[i].writers == 0 { stale |= GrantFlags.writing }
        if uses[i].readers + uses[i].writers == 0 {
            stale |= GrantFlags.reading
            uses.remove(at: i)
        }
        return stale
    }
}

/// A domain's mappings of other domains' grants, by the handle the map call returned.
public struct Maptrack: Sendable {
    public struct Entry: Equatable, Sendable {
        public var granter: DomainID
        public var ref: GrantRef
        /// The granted frame, in host memory.
        public var frame: HostPhysicalAddress
        /// Where the frame appears in the mapping domain's address space.
        public var address: GuestPhysicalAddress
        public var readOnly: Bool
        public init(granter: DomainID, ref: GrantRef, frame: HostPhysicalAddress, address: GuestPhysicalAddress, readOnly: Bool) {
            self.granter = granter
            self.ref = ref
            self.frame = frame
            self.address = address
            self.readOnly = readOnly
        }
    }

    public static let capacity = 1024
    public private(set) var entries: [Entry?] = []

    public init() {}

    /// The new handle, or nil when the table is full.
    public mutating func add(_ e: Entry) -> UInt32? {
        if let free = entries.firstIndex(where: { $0 == nil }) {
            entries[free] = e
            return UInt32(free)
        }
        guard entries.count < Self.capacity else { return nil }
        entries.append(e)
        return UInt32(entries.count - 1)
    }

    public mutating func remove(handle: UInt32) -> Entry? {
        guard Int(handle) < entries.count, let e = entries[Int(handle)] else { return nil }
        entries[Int(handle)] = nil
        return e
    }

    public func isMapped(at address: GuestPhysicalAddress) -> Bool { entries.contains { $0?.address == address } }

    /// Whether the host frame `frame` is one this domain has mapped.
    public func holds(frame: HostPhysicalAddress) -> Bool { entries.contains { $0?.frame == frame } }
}
