// Xen's grant_ref_t: an entry of a domain's grant table. Its own type, so a reference is never taken for
// a handle, a frame number or a port; it has the layout of the uint32_t in Xen's structures.

public struct GrantRef: Hashable, Sendable, ExpressibleByIntegerLiteral {
    public var raw: UInt32
    @inlinable public init(_ raw: UInt32) { self.raw = raw }
    @inlinable public init(integerLiteral value: UInt32) { raw = value }
    /// Which grant frame holds the entry, and where in it (v1 entries, 512 to a frame).
    @inlinable public var frameIndex: Int { Int(raw) / GrantAccess.entriesPerFrame }
    @inlinable public var offsetInFrame: UInt64 { UInt64(Int(raw) % GrantAccess.entriesPerFrame * GrantAccess.entrySize) }
}
