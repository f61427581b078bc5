// Xen's evtchn_port_t: a domain's event-channel port number. Its own type, so a port is never taken for
// a vCPU, a VIRQ or a domain id; it has the layout of the uint32_t in Xen's structures.

public struct EventPort: Hashable, Comparable, Sendable, ExpressibleByIntegerLiteral {
    public var raw: UInt32
    @inlinable public init(_ raw: UInt32) { self.raw = raw }
    @inlinable public init(_ index: Int) { raw = UInt32(index) }
    /// A port written as a number (port 3, as a guest names it).
    @inlinable public init(integerLiteral value: UInt32) { raw = value }
    /// Port 0, which guests take to mean "no port"; never handed out.
    public static let none = EventPort(UInt32(0))
    /// Where it is in per-port tables.
    @inlinable public var index: Int { Int(raw) }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
}
