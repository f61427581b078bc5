// Three address spaces meet in a hypervisor, and mixing them up is the classic way to hand a guest
// someone else's memory. Each gets its own type so the compiler refuses the mix-up.

/// An address in the machine's physical address space (what the hypervisor's identity map sees).
public struct HostPhysicalAddress: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    @inlinable public static func + (a: Self, offset: UInt64) -> Self { Self(a.raw &+ offset) }
    @inlinable public var pageOffset: UInt64 { raw & 0xFFF }
}

/// An intermediate physical address: what a guest believes is physical, translated by stage 2.
public struct GuestPhysicalAddress: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    @inlinable public static func + (a: Self, offset: UInt64) -> Self { Self(a.raw &+ offset) }
    @inlinable public var pageOffset: UInt64 { raw & 0xFFF }
}

/// A virtual address, translated by some stage-1 regime (the guest's EL1 tables or the hypervisor's own).
public struct VirtualAddress: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    @inlinable public static func + (a: Self, offset: UInt64) -> Self { Self(a.raw &+ offset) }
}

public let pageSize: UInt64 = 4096

/// A guest frame number (Xen's gfn_t): a page of the guest's physical address space, as Xen's
/// interfaces name pages. Xen on Arm gives guests 48 bits of physical address space, so a frame from
/// a guest is valid below 2^36; `init?(guest:)` is how a number a guest passed becomes one.
public struct GuestFrameNumber: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    /// The frame a guest named, or nil when it lies beyond the guest's 48-bit physical address space.
    @inlinable public init?(guest raw: UInt64) {
        guard raw >> 36 == 0 else { return nil }
        self.raw = raw
    }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    /// The frame's first byte.
    @inlinable public var address: GuestPhysicalAddress { GuestPhysicalAddress(raw << 12) }
}

/// A host frame number (Xen's mfn_t): a page of the machine's physical memory.
public struct HostFrameNumber: Hashable, Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    @inlinable public var address: HostPhysicalAddress { HostPhysicalAddress(raw << 12) }
}

extension GuestPhysicalAddress {
    /// The frame this address lies in.
    @inlinable public var frame: GuestFrameNumber { GuestFrameNumber(raw >> 12) }
}

extension HostPhysicalAddress {
    @inlinable public var frame: HostFrameNumber { HostFrameNumber(raw >> 12) }
}

@inlinable public func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    (value &+ alignment &- 1) & ~(alignment &- 1)
}

@inlinable public func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    value & ~(alignment &- 1)
}

/// A Xen domain id. Domain 0 is the privileged control domain.
public struct DomainID: Hashable, Sendable {
    public var raw: UInt16
    @inlinable public init(_ raw: UInt16) { self.raw = raw }
    public static let zero = DomainID(0)
}
