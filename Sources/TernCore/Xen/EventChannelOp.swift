// event_channel_op: what a guest may do with its ports, decided here behind the seam and tested on the
// host. The hypervisor supplies an EventChannelHost: the calling domain's table and its peers' (under
// their locks, which the host takes in its lock order), and the effects (raising a port, the console
// backend, delivery on unmask). Xen's argument structures are read and written whole, as Swift types
// whose layout the host tests check against public/event_channel.h.

/// What event_channel_op needs from the hypervisor, for one calling domain. In the hypervisor the
/// calling Domain is its own host, passed without a reference-count change on the hypercall path.
public protocol EventChannelHost {
    var caller: DomainID { get }
    var vcpuCount: Int { get }
    /// The control domain's: it may allocate and look at ports of other domains (the toolstack's
    /// alloc_unbound and status for a domain it builds).
    var privileged: Bool { get }
    /// Runs `body` on the caller's ports with their lock held.
    func withPorts<R>(_ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R
    /// Runs `body` on the ports of the live domain `other` (not the caller) with their lock held; nil
    /// when there is no such domain.
    func withPorts<R>(of other: DomainID, _ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R?
    /// Runs `body` on the caller's ports and those of `peer`, both locked; when `peer` is the caller
    /// the two pointers are one table. nil when `peer` is no live domain.
    func withPorts<R>(pairedWith peer: DomainID,
                               _ body: (_ own: UnsafeMutablePointer<EventChannelTable>,
                                        _ peer: UnsafeMutablePointer<EventChannelTable>) -> R) -> R?
    /// The caller's `port` fired: mark it pending and interrupt its vCPU if the guest should look.
    func raise(_ port: EventPort)
    /// `port` of the other domain `peer` fired, if `stillOurs` says so of its ports (asked under its
    /// lock while it is held alive); nothing when it is gone.
    func raise(_ port: EventPort, of peer: DomainID, if stillOurs: (EventChannelTable) -> Bool)
    /// The guest kicked the console port, whose other end is the hypervisor.
    func kickConsole()
    /// `port` was unmasked: deliver it to `vcpu` if it is pending (2-level bits or FIFO queues).
    func unmasked(_ port: EventPort, vcpu: Int)
    /// `port` is about to be freed: it stops being pending (FIFO), so its next binding starts clean.
    func closing(_ port: EventPort)

    // The FIFO ABI, which a guest asks for with EVTCHNOP_init_control.
    /// The host memory behind `length` bytes of the caller's RAM at `address`; nil outside its RAM.
    func ram(_ address: GuestPhysicalAddress, length: UInt64) -> HostPhysicalAddress?
    /// Registers `vcpu`'s control block (switching the caller to FIFO at the first); false when that
    /// vCPU has one already.
    func fifoRegisterControlBlock(vcpu: Int, at block: HostPhysicalAddress) -> Bool
    /// Adds the next page of event words: nil when the caller is not on FIFO, false when it has all.
    func fifoAddArrayPage(_ page: HostPhysicalAddress) -> Bool?
    /// Sets a bound port's priority: nil when the caller is not on FIFO, false for a bad priority.
    func fifoSetPriority(_ port: EventPort, _ priority: Int) -> Bool?
}

public enum EventChannelOp {
    /// NR_VIRQS in xen.h.
    public static let virqCount: UInt32 = 24
    /// DOMID_XEN: the other end of a port the hypervisor itself serves.
    public static let domidXen: UInt16 = 0x7FF2

    /// The hypercall; nil for the commands Tern does not implement (ENOSYS is then the caller's to
    /// answer, and to report).
    @inline(__always)
    public static func handle<Memory: GuestMemoryAccess, Host: EventChannelHost>(
        _ command: EventChannelOpCommand, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64? {
        switch command {
        case .send:
            // evtchn_send is one aligned word: the fast load, on the path the event-channel benchmark times.
            guard let port = memory.load32(arg) else { return XenError.EFAULT.returnValue }
            return self.send(EventPort(port), host)
        case .unmask:
            var unmask = EvtchnPort()
            guard memory.read(&unmask, from: arg) else { return XenError.EFAULT.returnValue }
            let bound: Int? = host.withPorts { t in t.pointee.state(unmask.port) == nil ? nil : t.pointee.vcpu(for: unmask.port) }
            guard let vcpu = bound else { return XenError.EINVAL.returnValue }
            host.unmasked(unmask.port, vcpu: vcpu)
            return 0
        case .alloc_unbound:
            var request = EvtchnAllocUnbound()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            // DOMID_SELF as the remote end is the caller, also when the port is another domain's.
            let remote = request.remoteDom == domidSelf ? host.caller : DomainID(request.remoteDom)
            let found = onPorts(of: request.dom, host) { $0.pointee.allocate(.unbound(remote: remote)) }
            guard case .success(let allocated) = found else { return found.errorValue }
            guard let port = allocated else { return XenError.ENOSPC.returnValue }
            request.port = port
            return memory.write(request, to: arg) ? 0 : XenError.EFAULT.returnValue
        case .bind_interdomain:
            var request = EvtchnBindInterdomain()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            return bindInterdomain(&request, arg, &memory, host)
        case .bind_virq:
            var request = EvtchnBindVIRQ()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard request.virq < virqCount, request.vcpu < UInt32(host.vcpuCount),
                  !isGlobal(request.virq) || request.vcpu == 0 else { return XenError.EINVAL.returnValue }
            let (virq, vcpu) = (request.virq, Int(request.vcpu))
            let port: EventPort? = host.withPorts { t in
                if t.pointee.port(forVIRQ: virq, vcpu: vcpu) != nil { return nil }
                return t.pointee.allocate(.virq(virq, vcpu: vcpu), vcpu: vcpu)
            }
            guard let port else { return XenError.EEXIST.returnValue }
            request.port = port
            return memory.write(request, to: arg) ? 0 : XenError.EFAULT.returnValue
        case .bind_ipi:
            var request = EvtchnBindIPI()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard request.vcpu < UInt32(host.vcpuCount) else { return XenError.ENOENT.returnValue }
            let vcpu = Int(request.vcpu)
            guard let port = host.withPorts({ $0.pointee.allocate(.ipi(vcpu: vcpu), vcpu: vcpu) }) else {
                return XenError.ENOSPC.returnValue
            }
            request.port = port
            return memory.write(request, to: arg) ? 0 : XenError.EFAULT.returnValue
        case .bind_vcpu:
            var request = EvtchnBindVCPU()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard request.vcpu < UInt32(host.vcpuCount) else { return XenError.ENOENT.returnValue }
            return host.withPorts { t in
                guard let state = t.pointee.state(request.port), state != .free else { return XenError.EINVAL.returnValue }
                if case .ipi = state { return XenError.EINVAL.returnValue }      // fixed at bind time, as on Xen
                t.pointee.bind(request.port, toVCPU: Int(request.vcpu))
                return 0
            }
        case .close:
            var close = EvtchnPort()
            guard memory.read(&close, from: arg) else { return XenError.EFAULT.returnValue }
            return self.close(close.port, host)
        case .status:
            var request = EvtchnStatus()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            var answered = request
            let found = onPorts(of: request.dom, host) { status(&answered, $0) }
            guard case .success(let inRange) = found else { return found.errorValue }
            guard inRange else { return XenError.EINVAL.returnValue }
            request = answered
            return memory.write(request, to: arg) ? 0 : XenError.EFAULT.returnValue
        case .init_control:
            var request = EvtchnInitControl()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            return initControl(request, arg, &memory, host)
        case .expand_array:
            var request = EvtchnExpandArray()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard let frame = GuestFrameNumber(guest: request.arrayGFN),
                  let page = host.ram(frame.address, length: pageSize) else { return XenError.EINVAL.returnValue }
            guard let added = host.fifoAddArrayPage(page) else { return XenError.EOPNOTSUPP.returnValue }
            return added ? 0 : XenError.ENOSPC.returnValue
        case .set_priority:
            var request = EvtchnSetPriority()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            let port = request.port
            guard host.withPorts({ t in t.pointee.state(port).map { $0 != .free } ?? false }) else {
                return XenError.EINVAL.returnValue
            }
            guard let set = host.fifoSetPriority(port, Int(request.priority)) else { return XenError.ENOSYS.returnValue }
            return set ? 0 : XenError.EINVAL.returnValue
        case .bind_pirq, .reset:
            return nil
        }
    }


    /// EVTCHNOP_init_control: `vcpu`'s control block, 8-byte aligned within one page of the caller's RAM.
    static func initControl<Memory: GuestMemoryAccess, Host: EventChannelHost>(
        _ request: EvtchnInitControl, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        guard request.vcpu < UInt32(host.vcpuCount) else { return XenError.ENOENT.returnValue }
        let size = UInt32(FIFOControlBlockLayout.size)
        guard request.offset <= UInt32(pageSize) - size, request.offset & 7 == 0,
              let frame = GuestFrameNumber(guest: request.controlGFN),
              let block = host.ram(frame.address + UInt64(request.offset), length: UInt64(size)) else {
            return XenError.EINVAL.returnValue
        }
        guard memory.write(FIFOEventWord.linkBits, to: arg + EvtchnInitControl.linkBitsOffset) else {
            return XenError.EFAULT.returnValue
        }
        return host.fifoRegisterControlBlock(vcpu: Int(request.vcpu), at: block) ? 0 : XenError.EINVAL.returnValue
    }

    @inline(__always)
    static func send<Host: EventChannelHost>(_ port: EventPort, _ host: Host) -> UInt64 {
        guard let state = host.withPorts({ $0.pointee.state(port) }) else { return XenError.EINVAL.returnValue }
        switch state {
        case .interdomain(let remote, let remotePort):
            if remote == host.caller {
                host.raise(remotePort)
            } else {
                // Only if its end still names ours: a restarted domain reuses the id, not the ports.
                let caller = host.caller
                host.raise(remotePort, of: remote) { $0.isBound(remotePort, to: caller, port: port) }
            }
            return 0
        case .console:
            host.kickConsole()
            return 0
        case .ipi:
            host.raise(port)
            return 0
        case .unbound:
            return 0                        // nobody listens yet: dropped, as Xen does
        case .free, .virq:
            return XenError.EINVAL.returnValue
        }
    }

    static func bindInterdomain<Memory: GuestMemoryAccess, Host: EventChannelHost>(
        _ request: inout EvtchnBindInterdomain, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        let caller = host.caller
        let remote = request.remoteDom == domidSelf ? caller : DomainID(request.remoteDom)
        let remotePort = request.remotePort
        // The remote port must have been allocated for us; both ends then name each other.
        let bound: EventPort?? = host.withPorts(pairedWith: remote) { own, peer in
            guard peer.pointee.state(remotePort) == .unbound(remote: caller) else { return nil }
            guard let port = own.pointee.allocate(.interdomain(remote: remote, port: remotePort)) else { return nil }
            peer.pointee.set(remotePort, .interdomain(remote: caller, port: port))
            return port
        }
        guard let found = bound else { return XenError.ESRCH.returnValue }
        guard let local = found else { return XenError.EINVAL.returnValue }
        request.localPort = local
        guard memory.write(request, to: arg) else { return XenError.EFAULT.returnValue }
        host.raise(local)                  // Xen marks the new local port pending, so neither end misses an event
        return 0
    }

    static func close<Host: EventChannelHost>(_ port: EventPort, _ host: Host) -> UInt64 {
        // The console port is the hypervisor's end, and stays.
        guard let state = host.withPorts({ $0.pointee.state(port) }), state != .free, state != .console else {
            return XenError.EINVAL.returnValue
        }
        host.closing(port)
        if case .interdomain(let remote, let remotePort) = state {
            // The other end goes back to waiting for us, as in Xen, unless it moved on (closed, or a
            // restart reused the domain id).
            let caller = host.caller
            let done: Void? = host.withPorts(pairedWith: remote) { own, peer in
                peer.pointee.unbind(remotePort, from: caller, port: port)
                own.pointee.set(port, .free)
            }
            if done != nil { return 0 }
        }
        host.withPorts { $0.pointee.set(port, .free) }
        return 0
    }

    /// Xen's virq_is_global: every VIRQ but the per-vCPU timer, debug, xenoprof and xenpmu (and Arm's
    /// architectural ones, which Tern has none of) goes to one place, bound on vCPU 0.
    @inline(never) static func isGlobal(_ virq: UInt32) -> Bool {
        switch virq {
        case 0, 1, 7, 13, 16 ..< 24: false
        default: true
        }
    }

    /// Runs `body` on the ports of the domain `dom` names: the caller's, or for the control domain
    /// another live one's (-ESRCH when there is none); a domU naming another domain gets -EPERM.
    static func onPorts<Host: EventChannelHost, R>(of dom: UInt16, _ host: Host,
                                                   _ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> Result<R, XenError> {
        if namesCaller(dom, host.caller) { return .success(host.withPorts(body)) }
        guard host.privileged else { return .failure(.EPERM) }
        guard let r = host.withPorts(of: DomainID(dom), body) else { return .failure(.ESRCH) }
        return .success(r)
    }

    /// Fills in EVTCHNOP_status's answer from `table`; false when the port is out of range.
    static func status(_ request: inout EvtchnStatus, _ table: UnsafeMutablePointer<EventChannelTable>) -> Bool {
        let port = request.port
        guard let state = table.pointee.state(port) else { return false }
        let vcpu = table.pointee.vcpu(for: port)
        request.vcpu = UInt32(vcpu)
        (request.u0, request.u1) = (0, 0)
        switch state {
        case .free: request.status = EvtchnStatus.closed
        case .unbound(let remote):
            request.status = EvtchnStatus.unbound
            request.u0 = UInt32(remote.raw)
        case .interdomain(let remote, let remotePort):
            request.status = EvtchnStatus.interdomain
            (request.u0, request.u1) = (UInt32(remote.raw), remotePort.raw)
        case .virq(let n, _):
            request.status = EvtchnStatus.virq
            request.u0 = n
        case .ipi: request.status = EvtchnStatus.ipi
        case .console:
            request.status = EvtchnStatus.interdomain
            request.u0 = UInt32(domidXen)
        }
        return true
    }
}

// Xen's argument structures (public/event_channel.h), in its field order with C's padding made explicit
// (a structure is written back whole, and implicit padding would carry whatever the stack held);
// EventChannelOpTests checks each size and offset against the header's.

/// evtchn_send, evtchn_close and evtchn_unmask: one port each.
public struct EvtchnPort { public var port = EventPort.none; public init() {} }

public struct EvtchnAllocUnbound {
    public var dom: UInt16 = 0
    public var remoteDom: UInt16 = 0
    public var port = EventPort.none
    public init() {}
}

public struct EvtchnBindInterdomain {
    public var remoteDom: UInt16 = 0
    var padding: UInt16 = 0
    public var remotePort = EventPort.none
    public var localPort = EventPort.none
    public init() {}
}

public struct EvtchnBindVIRQ {
    public var virq: UInt32 = 0
    public var vcpu: UInt32 = 0
    public var port = EventPort.none
    public init() {}
}

public struct EvtchnBindIPI {
    public var vcpu: UInt32 = 0
    public var port = EventPort.none
    public init() {}
}

public struct EvtchnBindVCPU {
    public var port = EventPort.none
    public var vcpu: UInt32 = 0
    public init() {}
}

/// evtchn_init_control: the control block's frame and offset, for one vCPU; link_bits is the answer.
public struct EvtchnInitControl {
    /// Where link_bits is (only it is written back); the tests check it against the field.
    public static let linkBitsOffset: UInt64 = 16
    public var controlGFN: UInt64 = 0
    public var offset: UInt32 = 0
    public var vcpu: UInt32 = 0
    public var linkBits: UInt8 = 0
    var padding: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0)
    public init() {}
}

public struct EvtchnExpandArray {
    public var arrayGFN: UInt64 = 0
    public init() {}
}

public struct EvtchnSetPriority {
    public var port = EventPort.none
    public var priority: UInt32 = 0
    public init() {}
}

public struct EvtchnStatus {
    public static let closed: UInt32 = 0, unbound: UInt32 = 1, interdomain: UInt32 = 2, pirq: UInt32 = 3
    public static let virq: UInt32 = 4, ipi: UInt32 = 5
    public var dom: UInt16 = 0
    var padding: UInt16 = 0
    public var port = EventPort.none
    public var status: UInt32 = 0
    public var vcpu: UInt32 = 0
    /// The union: unbound's dom, interdomain's dom and port, virq's number.
    public var u0: UInt32 = 0
    public var u1: UInt32 = 0
    public init() {}
}
