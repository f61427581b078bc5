// event_channel_op and the upcall. What a guest may do with its ports is TernCore's EventChannelOp; this
// file is its host: the domains' tables under their events locks, and delivery. An event sets bits in
// the guest's shared_info and vcpu_info by the 2-level protocol (or links it into a FIFO queue), and a
// vCPU that must look gets the event-channel PPI (31) through its virtual GIC, as Xen does on Arm.
import TernArch
import TernArchAsm
import TernCore

/// The 2-level bits of one domain, reached through its shared_info and vcpu_info pages.
struct GuestEventBits: EventBits {
    let domain: Domain
    let shared: HostPhysicalAddress

    private var pending: UInt64 { (shared + UInt64(SharedInfoLayout.evtchnPending)).raw }
    private var mask: UInt64 { (shared + UInt64(SharedInfoLayout.evtchnMask)).raw }

    mutating func testAndSetPending(_ port: EventPort) -> Bool { tern_test_and_set_bit(pending, port.raw) != 0 }
    func isPending(_ port: EventPort) -> Bool { tern_test_bit(pending, port.raw) != 0 }
    func isMasked(_ port: EventPort) -> Bool { tern_test_bit(mask, port.raw) != 0 }
    mutating func testAndClearMask(_ port: EventPort) -> Bool { tern_test_and_clear_bit(mask, port.raw) != 0 }
    mutating func testAndSetSelector(vcpu: Int, word: UInt32) -> Bool? {
        guard let info = domain.vcpuInfo(vcpu, shared: shared) else { return nil }
        return tern_test_and_set_bit((info + UInt64(VCPUInfoLayout.pendingSelector)).raw, word) != 0
    }
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool {
        GuestUpcalls(domain: domain, shared: shared).testAndSetUpcallPending(vcpu: vcpu)
    }
}

/// Each vCPU's evtchn_upcall_pending, in its vcpu_info: what both ABIs raise.
struct GuestUpcalls {
    let domain: Domain
    let shared: HostPhysicalAddress?

    /// Sets the flag; true when it was set already (or the vCPU has no vcpu_info to be told through).
    func testAndSetUpcallPending(vcpu: Int) -> Bool {
        guard let info = domain.vcpuInfo(vcpu, shared: shared) else { return true }
        return tern_exchange8((info + UInt64(VCPUInfoLayout.upcallPending)).raw, 1) != 0
    }
}

extension Domain {
    /// A vCPU's vcpu_info: where it registered one, else (vCPU 0 only) the slot inside shared_info.
    @inline(__always) func vcpuInfo(_ vcpu: Int, shared: HostPhysicalAddress?) -> HostPhysicalAddress? {
        guard vcpu < vcpus.count else { return nil }
        if let registered = vcpus[vcpu].vcpuInfo { return registered }
        return vcpu == 0 ? shared.map { $0 + UInt64(SharedInfoLayout.vcpuInfo0) } : nil
    }
}

/// The event-channel PPI for `v`: its guest should look at its events.
@inline(__always) func raiseEventUpcall(_ v: VCPU) { raiseInterrupt(v, Int(GuestLayout.eventChannelPPI)) }

/// Marks `port` pending in `d` and interrupts the vCPU it is bound to if the guest should look now.
func notifyPort(_ d: Domain, _ port: EventPort) {
    let (shared, vcpu, fifo) = d.events.withLock { ($0.sharedInfo, $0.ports.vcpu(for: port), $0.fifo != nil) }
    if fifo {
        if withFIFO(d, { queues, memory in queues.setPending(&memory, port: port, vcpu: vcpu) }) == true {
            raiseEventUpcall(d.vcpus[vcpu])
        }
        wakePollers(d, port)
        return
    }
    guard let shared else { return }
    var bits = GuestEventBits(domain: d, shared: shared)
    if TwoLevelEvents.setPending(&bits, port: port, vcpu: vcpu) {
        raiseEventUpcall(d.vcpus[vcpu])
    }
    // The guest may have switched to FIFO meanwhile, after looking for pending 2-level bits: raise it
    // there too (a port already pending is linked once).
    if d.usesFIFO { return notifyPort(d, port) }
    wakePollers(d, port)
}

/// The domain `id` (live unless `live` is false), held (DomainReferences) while `body` works on it, so
/// it cannot be released meanwhile; nil if there is none (or, with `xenPV`, none with Xen's PV interfaces). Only
/// the look-up takes a lock (this CPU's run queue's: the domain table changes only under all of them);
/// letting go takes none.
func withHeldDomain<R>(_ id: DomainID, live: Bool = true, xenPV: Bool = false, _ body: (Domain) -> R) -> R? {
    guard let d = holdDomain(id, live: live, xenPV: xenPV) else { return nil }
    defer { d.withReferences { DomainReferences.drop($0) } }
    return body(d)
}

/// The domain `id` (dead or alive, with `live` only alive), held: DomainReferences.drop lets go.
func holdDomain(_ id: DomainID, live: Bool, xenPV: Bool = false) -> Domain? {
    withDomainTable {
        guard let d = domain(id, live: live, xenPV: xenPV) else { return nil }
        return d.withReferences { DomainReferences.hold($0) } ? d : nil
    }
}

/// The live domain with id `id`, for the other end of an interdomain channel (its table only: to write
/// its memory, hold it with withHeldDomain).
func liveDomain(_ id: DomainID) -> Domain? {
    withDomainTable { domain(id, live: true) }
}

/// The domain `id` in the domain table (with `live`, not dying; with `xenPV`, one with Xen's PV
/// interfaces). Under a run-queue lock (withDomainTable) or all of them.
private func domain(_ id: DomainID, live: Bool, xenPV: Bool = false) -> Domain? {
    for case let d? in domains where d.id == id && !(live && d.dying) && (d.xenPV || !xenPV) { return d }
    return nil
}

func eventChannelOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV, let command = EventChannelOpCommand(rawValue: command) else { return XenError.ENOSYS.returnValue }
    var memory = RunningGuestMemory()
    return EventChannelOp.handle(command, arg, &memory, d) ?? XenError.ENOSYS.returnValue
}

/// The calling domain's side of TernCore's EventChannelOp: its ports and its peers' under their events
/// locks (two domains' in slot order, so two domains binding to each other cannot deadlock), and the
/// deliveries.
extension Domain: EventChannelHost {
    var caller: DomainID { id }
    var vcpuCount: Int { vcpus.count }

    @inline(__always)
    func withPorts<R>(_ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R {
        events.withLock { e in withUnsafeMutablePointer(to: &e.ports, body) }
    }

    func withPorts<R>(of other: DomainID, _ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R? {
        withHeldDomain(other, xenPV: true) { remote in remote.events.withLock { e in withUnsafeMutablePointer(to: &e.ports, body) } }
    }

    func withPorts<R>(pairedWith peer: DomainID,
                      _ body: (UnsafeMutablePointer<EventChannelTable>, UnsafeMutablePointer<EventChannelTable>) -> R) -> R? {
        let d = self
        if peer == d.id { return withPorts { body($0, $0) } }
        guard let remote = liveDomain(peer) else { return nil }
        let (first, second) = d.slot < remote.slot ? (d, remote) : (remote, d)
        return first.events.withLock { a in
            second.events.withLock { b in
                withUnsafeMutablePointer(to: &a.ports) { pa in
                    withUnsafeMutablePointer(to: &b.ports) { pb in first === d ? body(pa, pb) : body(pb, pa) }
                }
            }
        }
    }

    @inline(__always) func raise(_ port: EventPort) { notifyPort(self, port) }

    func raise(_ port: EventPort, of peer: DomainID, if stillOurs: (EventChannelTable) -> Bool) {
        // Held while its pages are written: it may be dying on another CPU.
        _ = withHeldDomain(peer) { remote in
            if remote.events.withLock({ stillOurs($0.ports) }) { notifyPort(remote, port) }
        }
    }

    func kickConsole() { consoleRingKick(self) }

    func unmasked(_ port: EventPort, vcpu: Int) {
        let d = self
        if let raise = withFIFO(d, { queues, memory in queues.unmask(&memory, port: port, vcpu: vcpu) }) {
            if raise { raiseEventUpcall(d.vcpus[vcpu]) }
            return
        }
        guard let shared = d.events.withLock({ $0.sharedInfo }) else { return }
        var bits = GuestEventBits(domain: d, shared: shared)
        if TwoLevelEvents.unmask(&bits, port: port, vcpu: vcpu) { raiseEventUpcall(d.vcpus[vcpu]) }
    }

    func closing(_ port: EventPort) {
        // A FIFO port stops being pending before it is freed, so an event for its next binding stays.
        _ = withFIFO(self) { queues, memory in queues.close(&memory, port: port) }
    }
}

/// A domain being released: the other ends of its interdomain channels go back to waiting for it, as
/// Xen's evtchn_destroy leaves them, so a later send or close on them touches nothing of its successor.
/// Called under the scheduler lock.
func unbindPeers(_ d: Domain) {
    let channels: [(port: EventPort, remote: DomainID, remotePort: EventPort)] = d.events.withLock { e in
        var found: [(port: EventPort, remote: DomainID, remotePort: EventPort)] = []
        for index in 1 ..< EventChannelTable.maximumPorts {
            let port = EventPort(index)
            if case .interdomain(let remote, let remotePort)? = e.ports.state(port), remote != d.id {
                found.append((port, remote, remotePort))
            }
        }
        return found
    }
    for (port, remoteID, remotePort) in channels {
        for case let remote? in domains where remote.id == remoteID && remote !== d {
            remote.events.withLock { $0.ports.unbind(remotePort, from: d.id, port: port) }
        }
    }
}
