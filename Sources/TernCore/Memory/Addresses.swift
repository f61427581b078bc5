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
