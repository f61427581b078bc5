// Event channels, Xen's virtual interrupt lines: the per-domain table of ports, and the 2-level
// protocol that turns "port P is pending" into bits in the guest's shared_info and vcpu_info and,
// when the guest should look, an upcall. The bits live in guest memory; `EventBits` abstracts how they
// are reached (atomically, in the hypervisor) so the protocol is tested here against plain arrays.

/// What a port is connected to.
public enum EventChannelState: Equatable, Sendable {
    case free
    /// Allocated for a remote domain that has not bound it yet (EVTCHNOP_alloc_unbound).
    case unbound(remote: DomainID)
    case interdomain(remote: DomainID, port: EventPort)
    /// Bound to a virtual IRQ of one vCPU (the one it was bound for, whoever gets its upcalls later).
    case virq(UInt32, vcpu: Int)
    /// The other end is the hypervisor itself: Tern's console backend.
    case console
    /// An interprocessor event within the domain (EVTCHNOP_bind_ipi): a send notifies this port's vCPU,
    /// which cannot be changed.
    case ipi(vcpu: Int)
}

public struct EventChannelTable: Sendable {
    /// 2-level event channels on a 64-bit guest can name 64 × 64 ports; Tern offers the first 1024,
    /// Xen's default for a domU (max_event_channels).
    public static let maximumPorts = 1024

    public private(set) var states: [EventChannelState]
    /// The vCPU that gets the upcall for each port (EVTCHNOP_bind_vcpu changes it).
    public private(set) var notify: [UInt8]

    public init() {
        states = [EventChannelState](repeating: .free, count: Self.maximumPorts)
        notify = [UInt8](repeating: 0, count: Self.maximumPorts)
    }

    public func state(_ port: EventPort) -> EventChannelState? {
        port.index < Self.maximumPorts ? states[port.index] : nil
    }

    public func vcpu(for port: EventPort) -> Int { port.index < Self.maximumPorts ? Int(notify[port.index]) : 0 }

    /// Port 0 is never handed out: guests treat it as "no port".
    public mutating func allocate(_ state: EventChannelState, vcpu: Int = 0) -> EventPort? {
        for port in 1 ..< Self.maximumPorts where states[port] == .free {
            states[port] = state
            notify[port] = UInt8(truncatingIfNeeded: vcpu)
            return EventPort(port)
        }
        return nil
    }

    public mutating func set(_ port: EventPort, _ state: EventChannelState) {
        guard port != .none, port.index < Self.maximumPorts else { return }
        states[port.index] = state
    }

    public mutating func bind(_ port: EventPort, toVCPU vcpu: Int) {
        guard port.index < Self.maximumPorts else { return }
        notify[port.index] = UInt8(truncatingIfNeeded: vcpu)
    }

    /// Whether `port` is the other end of `peer`'s `peerPort`: a domain restarted under the same id
    /// reuses the id, not the ports, so an interdomain end is checked before it is acted on.
    public func isBound(_ port: EventPort, to peer: DomainID, port peerPort: EventPort) -> Bool {
        state(port) == .interdomain(remote: peer, port: peerPort)
    }

    /// `peer` closed (or lost) its `peerPort`: `port`, if it still is that port's other end, goes back
    /// to waiting for `peer`, as Xen leaves it; an end that moved on stays as it is.
    public mutating func unbind(_ port: EventPort, from peer: DomainID, port peerPort: EventPort) {
        if isBound(port, to: peer, port: peerPort) { set(port, .unbound(remote: peer)) }
    }

    /// The port bound to VIRQ `virq` for `vcpu`, if any.
    public func port(forVIRQ virq: UInt32, vcpu: Int) -> EventPort? {
        for port in 1 ..< Self.maximumPorts where states[port] == .virq(virq, vcpu: vcpu) {
            return EventPort(port)
        }
        return nil
    }
}

/// The shared bits of the 2-level ABI: `evtchn_pending` and `evtchn_mask` in shared_info, and each
/// vCPU's `evtchn_pending_sel` and `evtchn_upcall_pending` in its vcpu_info. Every operation is one
/// atomic read-modify-write, because the guest changes the same words concurrently.
public protocol EventBits {
    /// Sets the port's pending bit; returns its previous value.
    mutating func testAndSetPending(_ port: EventPort) -> Bool
    func isPending(_ port: EventPort) -> Bool
    func isMasked(_ port: EventPort) -> Bool
    /// Clears the port's mask bit; returns its previous value.
    mutating func testAndClearMask(_ port: EventPort) -> Bool
    /// Sets bit `word` of the vCPU's pending selector; returns its previous value. nil: the vCPU has
    /// no vcpu_info yet, so it cannot be told.
    mutating func testAndSetSelector(vcpu: Int, word: UInt32) -> Bool?
    /// Sets the vCPU's upcall-pending flag; returns its previous value.
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool
}

public enum TwoLevelEvents {
    /// The port fired. Returns true when `vcpu` must be interrupted (its upcall flag just went up).
    public static func setPending<Bits: EventBits>(_ bits: inout Bits, port: EventPort, vcpu: Int) -> Bool {
        if bits.testAndSetPending(port) { return false }
        return announce(&bits, port: port, vcpu: vcpu)
    }

    /// EVTCHNOP_unmask: a port that became unmasked while pending is announced now.
    public static func unmask<Bits: EventBits>(_ bits: inout Bits, port: EventPort, vcpu: Int) -> Bool {
        guard bits.testAndClearMask(port), bits.isPending(port) else { return false }
        return announce(&bits, port: port, vcpu: vcpu)
    }

    private static func announce<Bits: EventBits>(_ bits: inout Bits, port: EventPort, vcpu: Int) -> Bool {
        if bits.isMasked(port) { return false }
        guard let wasSelected = bits.testAndSetSelector(vcpu: vcpu, word: port.raw / 64), !wasSelected else { return false }
        return !bits.testAndSetUpcallPending(vcpu: vcpu)
    }
}
