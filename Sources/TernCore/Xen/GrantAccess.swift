// The rules of a v1 grant entry (struct grant_entry_v1: flags, domid, frame), which lives in a page the
// granting guest writes too: what another domain may do with it, and how the hypervisor marks it in use.
// The flags and domid form the entry's first 32-bit word, which the hypervisor changes only by
// compare-and-swap, so a guest revoking the grant at the same moment either wins or sees it busy.

/// GNTST_* results, as Xen writes them in each operation's status field.
public enum GrantStatus: Int16, Sendable {
    case okay = 0, generalError = -1, badDomain = -2, badGrantRef = -3, badHandle = -4, badVirtualAddress = -5
    case noDeviceSpace = -7, permissionDenied = -8, badPage = -9, badCopyArgument = -10, noSpace = -13
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
    /// Each grant's uses by reference, as far as any has been used: read-only ones in the low byte,
    /// writable ones in the high one (Xen's active entries, one per reference).
    private var uses: [UInt16] = []
    public private(set) var total = 0

    public init() {}

    /// Xen counts each kind of use in a byte (its GNTPIN_* counters) and refuses one that could
    /// overflow it, GNTST_general_error to the caller: so does Tern, at the same count.
    public static let usesOfAKind = 128
    /// No table has a reference at or past this one.
    public static let references = GrantTableOp.maximumFrames * 512

    /// Takes a use; false (nothing taken) when the grant already has `usesOfAKind` of that kind, or
    /// no table has the reference.
    public mutating func add(_ ref: GrantRef, readOnly: Bool) -> Bool {
        let i = Int(ref.raw)
        guard i < Self.references else { return false }
        while uses.count <= i { uses.append(0) }
        let shift: UInt16 = readOnly ? 0 : 8
        guard (uses[i] >> shift) & 0xFF < Self.usesOfAKind else { return false }
        uses[i] += 1 << shift
        total += 1
        return true
    }

    /// Drops one use; returns the flags no longer true of the entry (to clear in it).
    public mutating func remove(_ ref: GrantRef, readOnly: Bool) -> UInt16 {
        let i = Int(ref.raw)
        guard i < uses.count, uses[i] != 0 else { return 0 }
        let shift: UInt16 = readOnly ? 0 : 8
        if (uses[i] >> shift) & 0xFF != 0 {
            uses[i] -= 1 << shift
            total -= 1
        }
        var stale: UInt16 = 0
        if uses[i] >> 8 == 0 { stale |= GrantFlags.writing }
        if uses[i] == 0 { stale |= GrantFlags.reading }
        return stale
    }
}

/// A domain's mappings of other domains' grants, by the handle the map call returned: Xen's maptrack.
/// It grows a frame of 256 entries at a time as the domain maps more (a page `newFrame` gives: the
/// hypervisor's frame allocator), up to the frames its creator allowed (max_maptrack_frames, 1024 by
/// default: 262,144 handles, what a dom0 serving many busy disks needs), never giving one back before
/// the domain dies. Free entries form one list through their first word, so a map or unmap costs the
/// same however many there are. As on Xen, a map takes its handle before it looks at the grant
/// (`reserve`, then `fill`), so a full table answers GNTST_no_space whatever the grant is.
public struct Maptrack {
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

    /// Xen's MAPTRACK_PER_PAGE: its entries are 16 bytes, and so are these.
    public static let entriesPerFrame = 256
    /// Xen's gnttab_max_maptrack_frames, the limit when the domain's creator names none.
    public static let defaultFrames = 1024

    public let frameLimit: Int
    /// The frames, each `entriesPerFrame` pairs of words: the granted frame's number with the reference
    /// (24 bits) above it; the guest frame number with the granter, read-only, in-use and reserved bits
    /// above it. A free entry's first word is the next free handle.
    public private(set) var frames: [UnsafeMutablePointer<UInt64>] = []
    /// Handles taken: mappings and reservations.
    public private(set) var count = 0
    private var firstFree = Maptrack.none

    private static let none = UInt32.max
    private static let frameBits: UInt64 = 40, frameMask: UInt64 = 1 << 40 - 1
    private static let readOnlyBit: UInt64 = 1 << 56, inUseBit: UInt64 = 1 << 57, reservedBit: UInt64 = 1 << 58

    public init(frameLimit: Int = Maptrack.defaultFrames) { self.frameLimit = frameLimit }

    private func slot(_ handle: UInt32) -> UnsafeMutablePointer<UInt64>? {
        let frame = Int(handle) / Self.entriesPerFrame
        guard frame < frames.count else { return nil }
        return frames[frame] + 2 * (Int(handle) % Self.entriesPerFrame)
    }

    /// A handle for a mapping still to be made; GNTST_no_space when the table is at its limit or no
    /// page is to be had for it.
    public mutating func reserve(newFrame: () -> UnsafeMutableRawPointer?) -> Result<UInt32, GrantStatusError> {
        if firstFree == Self.none {
            guard frames.count < frameLimit, let raw = newFrame() else { return .failure(GrantStatusError(.noSpace)) }
            if frames.isEmpty { frames.reserveCapacity(frameLimit) }
            let page = raw.bindMemory(to: UInt64.self, capacity: 2 * Self.entriesPerFrame)
            let base = UInt32(frames.count * Self.entriesPerFrame)
            for i in 0 ..< Self.entriesPerFrame {
                page[2 * i] = i == Self.entriesPerFrame - 1 ? UInt64(Self.none) : UInt64(base) + UInt64(i) + 1
                page[2 * i + 1] = 0
            }
            frames.append(page)
            firstFree = base
        }
        let handle = firstFree
        let s = slot(handle)!
        firstFree = UInt32(truncatingIfNeeded: s[0])
        s[0] = 0
        s[1] = Self.reservedBit
        count += 1
        return .success(handle)
    }

    /// Makes reserved handle `handle` the mapping `e`; false (the handle stays reserved) for what no
    /// entry can hold (no host or guest frame is that far up, no reference that large).
    public mutating func fill(_ handle: UInt32, with e: Entry) -> Bool {
        let hostFrame = e.frame.raw >> 12, guestFrame = e.address.raw >> 12
        guard let s = slot(handle), s[1] == Self.reservedBit,
              hostFrame <= Self.frameMask, guestFrame <= Self.frameMask, e.ref.raw < 1 << 24 else { return false }
        s[0] = hostFrame | UInt64(e.ref.raw) << Self.frameBits
        s[1] = guestFrame | UInt64(e.granter.raw) << Self.frameBits | (e.readOnly ? Self.readOnlyBit : 0) | Self.inUseBit
        return true
    }

    /// Gives back a handle `reserve` took whose mapping was not made.
    public mutating func release(reserved handle: UInt32) {
        guard let s = slot(handle), s[1] == Self.reservedBit else { return }
        free(handle, s)
    }

    private mutating func free(_ handle: UInt32, _ s: UnsafeMutablePointer<UInt64>) {
        s[1] = 0
        s[0] = UInt64(firstFree)
        firstFree = handle
        count -= 1
    }

    /// `reserve` and `fill` at once: the new handle; GNTST_general_error for what no entry can hold.
    public mutating func add(_ e: Entry, newFrame: () -> UnsafeMutableRawPointer?) -> Result<UInt32, GrantStatusError> {
        let reserved = reserve(newFrame: newFrame)
        guard case .success(let handle) = reserved else { return reserved }
        guard fill(handle, with: e) else {
            release(reserved: handle)
            return .failure(GrantStatusError(.generalError))
        }
        return reserved
    }

    private static func entry(_ s: UnsafeMutablePointer<UInt64>) -> Entry? {
        let (w0, w1) = (s[0], s[1])
        guard w1 & inUseBit != 0 else { return nil }
        return Entry(granter: DomainID(UInt16(truncatingIfNeeded: w1 >> frameBits)),
                     ref: GrantRef(UInt32(truncatingIfNeeded: w0 >> frameBits)),
                     frame: HostPhysicalAddress((w0 & frameMask) << 12),
                     address: GuestPhysicalAddress((w1 & frameMask) << 12), readOnly: w1 & readOnlyBit != 0)
    }

    /// The mapping a handle names, if it is one.
    public func entry(_ handle: UInt32) -> Entry? { slot(handle).flatMap(Self.entry) }

    public mutating func remove(handle: UInt32) -> Entry? {
        guard let s = slot(handle), let e = Self.entry(s) else { return nil }
        free(handle, s)
        return e
    }

    /// Whether the host frame `frame` is one this domain has mapped: a look at every mapping, so at
    /// most one per call (GrantTableOp.flushesPerCall).
    public func holds(frame: HostPhysicalAddress) -> Bool {
        let wanted = frame.raw >> 12
        for page in frames {
            for i in 0 ..< Self.entriesPerFrame where page[2 * i + 1] & Self.inUseBit != 0 {
                if page[2 * i] & Self.frameMask == wanted { return true }
            }
        }
        return false
    }

    /// A dead domain's table, taken apart a piece at a time (a full one would keep every CPU waiting
    /// on the scheduler's lock): its last `limit` frames (one at least), their mappings for the caller to give each
    /// granter its use back, and the frames to free. `done` once nothing is left.
    public mutating func takeOut(frames limit: Int) -> (entries: [Entry], emptied: [UnsafeMutablePointer<UInt64>], done: Bool) {
        var entries: [Entry] = [], emptied: [UnsafeMutablePointer<UInt64>] = []
        while emptied.count < max(limit, 1), let page = frames.popLast() {
            for i in 0 ..< Self.entriesPerFrame {
                if let e = Self.entry(page + 2 * i) { entries.append(e) }
                if page[2 * i + 1] != 0 { count -= 1 }
            }
            emptied.append(page)
        }
        // Its free list ran through the frames gone.
        firstFree = Self.none
        return (entries, emptied, frames.isEmpty)
    }
}
