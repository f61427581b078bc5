// event_channel_op and the upcall: ports are bound and closed in the domain's EventChannelTable, an
// event sets bits in the guest's shared_info and vcpu_info by the 2-level protocol, and a vCPU that must
// look gets the event-channel PPI (31) through its virtual GIC, as Xen does on Arm.
import TernArch
import TernArchAsm
import TernCore

/// The 2-level bits of one domain, reached through its shared_info and vcpu_info pages.
struct GuestEventBits: EventBits {
    let domain: Domain
    let shared: UInt64

    mutating func testAndSetPending(_ port: UInt32) -> Bool {
        tern_test_and_set_bit(shared + UInt64(SharedInfoLayout.evtchnPending), port) != 0
    }
    func isPending(_ port: UInt32) -> Bool { tern_test_bit(shared + UInt64(SharedInfoLayout.evtchnPending), port) != 0 }
    func isMasked(_ port: UInt32) -> Bool { tern_test_bit(shared + UInt64(SharedInfoLayout.evtchnMask), port) != 0 }
    mutating func testAndClearMask(_ port: UInt32) -> Bool {
        tern_test_and_clear_bit(shared + UInt64(SharedInfoLayout.evtchnMask), port) != 0
    }
    mutating func testAndSetSelector(vcpu: Int, word: UInt32) -> Bool? {
        guard let info = vcpuInfo(vcpu) else { return nil }
        return tern_test_and_set_bit(info + UInt64(VCPUInfoLayout.pendingSelector), word) != 0
    }
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool {
        guard let info = vcpuInfo(vcpu) else { return true }
        return tern_exchange8(info + UInt64(VCPUInfoLayout.upcallPending), 1) != 0
    }

    /// A vCPU's vcpu_info: where it registered one, else (vCPU 0 only) the slot inside shared_info.
    private func vcpuInfo(_ vcpu: Int) -> UInt64? {
        guard vcpu < domain.vcpus.count else { return nil }
        let registered = domain.vcpus[vcpu].vcpuInfo
        if registered != 0 { return registered }
        return vcpu == 0 ? shared + UInt64(SharedInfoLayout.vcpuInfo0) : nil
    }
}

/// The event-channel PPI for `v`: its guest should look at its events.
@inline(__always) func raiseEventUpcall(_ v: VCPU) { raiseInterrupt(v, Int(GuestLayout.eventChannelPPI)) }

/// Marks `port` pending in `d` and interrupts the vCPU it is bound to if the guest should look now.
func notifyPort(_ d: Domain, _ port: UInt32) {
    let (shared, vcpu, fifo) = d.withXen { (d.sharedInfo, d.events.vcpu(for: port), d.fifo != nil) }
    if fifo {
        if withFIFO(d, { queues, memory in queues.setPending(&memory, port: port, vcpu: vcpu) }) == true {
            raiseEventUpcall(d.vcpus[vcpu])
        }
        wakePollers(d, port)
        return
    }
    guard shared != 0 else { return }
    var bits = GuestEventBits(domain: d, shared: shared)
    if TwoLevelEvents.setPending(&bits, port: port, vcpu: vcpu) {
        raiseEventUpcall(d.vcpus[vcpu])
    }
    // The guest may have switched to FIFO meanwhile, after looking for pending 2-level bits: raise it
    // there too (a port already pending is linked once).
    if d.usesFIFO { return notifyPort(d, port) }
    wakePollers(d, port)
}

/// The live domain `id`, held (Domain.pins) while `body` works on its memory, so it cannot be released
/// meanwhile; nil if there is none (or, with `xenPV`, none with Xen's PV interfaces).
func withPinnedDomain<R>(_ id: DomainID, xenPV: Bool = false, _ body: (Domain) -> R) -> R? {
    lockScheduler()
    var found: Domain?
    for case let d? in domains where d.id == id && !d.dying && (d.xenPV || !xenPV) { found = d }
    found?.pins += 1
    unlockScheduler()
    guard let d = found else { return nil }
    defer {
        lockScheduler()
        d.pins -= 1
        unlockScheduler()
    }
    return body(d)
}

/// The live domain with id `id`, for the other end of an interdomain channel (its table only: to write
/// its memory, hold it with withPinnedDomain).
func liveDomain(_ id: DomainID) -> Domain? {
    lockScheduler()
    defer { unlockScheduler() }
    for case let d? in domains where d.id == id && !d.dying { return d }
    return nil
}

func eventChannelOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    switch EventChannelOpCommand(rawValue: command) {
    case .send:
        guard let port = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        return send(d, port)
    case .unmask:
        guard let port = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        let (shared, vcpu, valid) = d.withXen { (d.sharedInfo, d.events.vcpu(for: port), d.events.state(port) != nil) }
        guard valid else { return XenError.EINVAL.returnValue }
        if let raise = withFIFO(d, { queues, memory in queues.unmask(&memory, port: port, vcpu: vcpu) }) {
            if raise { raiseEventUpcall(d.vcpus[vcpu]) }
            return 0
        }
        guard shared != 0 else { return 0 }
        var bits = GuestEventBits(domain: d, shared: shared)
        if TwoLevelEvents.unmask(&bits, port: port, vcpu: vcpu) {
            raiseEventUpcall(d.vcpus[vcpu])
        }
        return 0
    case .alloc_unbound:
        // struct evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port; }
        guard let ids = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        guard isSelf(UInt16(truncatingIfNeeded: ids), d) else { return XenError.EPERM.returnValue }
        var remote = UInt16(truncatingIfNeeded: ids >> 16)
        if remote == domidSelf { remote = d.id.raw }
        guard let port = d.withXen({ d.events.allocate(.unbound(remote: DomainID(remote))) }) else {
            return XenError.ENOSPC.returnValue
        }
        return GuestMemory.store32(arg + 4, port) ? 0 : XenError.EFAULT.returnValue
    case .bind_interdomain:
        // struct evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port, local_port; }
        guard let first = GuestMemory.load32(arg), let remotePort = GuestMemory.load32(arg + 4) else {
            return XenError.EFAULT.returnValue
        }
        var remoteID = UInt16(truncatingIfNeeded: first)
        if remoteID == domidSelf { remoteID = d.id.raw }
        guard let remote = remoteID == d.id.raw ? d : liveDomain(DomainID(remoteID)) else { return XenError.ESRCH.returnValue }
        return bindInterdomain(d, remote, remotePort: remotePort, result: arg + 8)
    case .bind_virq:
        // struct evtchn_bind_virq { uint32_t virq, vcpu; evtchn_port_t port; }
        guard let virq = GuestMemory.load32(arg), let vcpu = GuestMemory.load32(arg + 4) else { return XenError.EFAULT.returnValue }
        guard virq < 24, vcpu < UInt32(d.vcpus.count) else { return XenError.EINVAL.returnValue }
        let port: UInt32? = d.withXen {
            if d.events.port(forVIRQ: virq, vcpu: Int(vcpu)) != nil { return nil }
            return d.events.allocate(.virq(virq, vcpu: Int(vcpu)), vcpu: Int(vcpu))
        }
        guard let port else { return XenError.EEXIST.returnValue }
        return GuestMemory.store32(arg + 8, port) ? 0 : XenError.EFAULT.returnValue
    case .bind_ipi:
        // struct evtchn_bind_ipi { uint32_t vcpu; evtchn_port_t port; }
        guard let vcpu = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        guard vcpu < UInt32(d.vcpus.count) else { return XenError.ENOENT.returnValue }
        guard let port = d.withXen({ d.events.allocate(.ipi(vcpu: Int(vcpu)), vcpu: Int(vcpu)) }) else {
            return XenError.ENOSPC.returnValue
        }
        return GuestMemory.store32(arg + 4, port) ? 0 : XenError.EFAULT.returnValue
    case .bind_vcpu:
        guard let port = GuestMemory.load32(arg), let vcpu = GuestMemory.load32(arg + 4) else { return XenError.EFAULT.returnValue }
        guard vcpu < UInt32(d.vcpus.count) else { return XenError.ENOENT.returnValue }
        return d.withXen {
            guard let state = d.events.state(port), state != .free else { return XenError.EINVAL.returnValue }
            if case .ipi = state { return XenError.EINVAL.returnValue }      // fixed at bind time, as on Xen
            d.events.bind(port, toVCPU: Int(vcpu))
            return 0
        }
    case .close:
        guard let port = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        return close(d, port)
    case .status:
        return status(d, arg)
    case .init_control:
        return fifoInitControl(d, arg)
    case .expand_array:
        return fifoExpandArray(d, arg)
    case .set_priority:
        return fifoSetPriority(d, arg)
    default:
        return XenError.ENOSYS.returnValue
    }
}

@inline(__always) func isSelf(_ id: UInt16, _ d: Domain) -> Bool { id == domidSelf || id == d.id.raw }

private func send(_ d: Domain, _ port: UInt32) -> UInt64 {
    guard let state = d.withXen({ d.events.state(port) }) else { return XenError.EINVAL.returnValue }
    switch state {
    case .interdomain(let remoteID, let remotePort):
        if remoteID == d.id {
            notifyPort(d, remotePort)
        } else {
            // Held while its pages are written: it may be dying on another CPU.
            _ = withPinnedDomain(remoteID) { remote in
                // Only if its end still names ours: a restarted domain reuses the id, not the ports.
                if remote.withXen({ remote.events.state(remotePort) == .interdomain(remote: d.id, port: port) }) {
                    notifyPort(remote, remotePort)
                }
            }
        }
        return 0
    case .console:
        consoleRingKick(d)
        return 0
    case .ipi:
        notifyPort(d, port)
        return 0
    case .unbound:
        return 0                        // nobody listens yet: dropped, as Xen does
    case .free, .virq:
        return XenError.EINVAL.returnValue
    }
}

private func bindInterdomain(_ d: Domain, _ remote: Domain, remotePort: UInt32, result: VirtualAddress) -> UInt64 {
    // The remote port must have been allocated for us; both ends then name each other. Two tables are
    // locked in domain-slot order so two domains binding to each other cannot deadlock.
    let local: UInt32? = withBoth(d, remote) {
        guard remote.events.state(remotePort) == .unbound(remote: d.id) else { return nil }
        guard let port = d.events.allocate(.interdomain(remote: remote.id, port: remotePort)) else { return nil }
        remote.events.set(remotePort, .interdomain(remote: d.id, port: port))
        return port
    }
    guard let local else { return XenError.EINVAL.returnValue }
    guard GuestMemory.store32(result, local) else { return XenError.EFAULT.returnValue }
    notifyPort(d, local)               // Xen marks the new local port pending, so neither end misses an event
    return 0
}

private func withBoth<R>(_ a: Domain, _ b: Domain, _ body: () -> R) -> R {
    if a === b { return a.withXen(body) }
    let (first, second) = a.slot < b.slot ? (a, b) : (b, a)
    return first.withXen { second.withXen(body) }
}

private func close(_ d: Domain, _ port: UInt32) -> UInt64 {
    // The console port is the hypervisor's end, and stays.
    guard let state = d.withXen({ d.events.state(port) }), state != .free, state != .console else {
        return XenError.EINVAL.returnValue
    }
    // A FIFO port stops being pending before it is freed, so an event for its next binding stays.
    _ = withFIFO(d) { queues, memory in queues.close(&memory, port: port) }
    switch state {
    case .free, .console: break
    case .interdomain(let remoteID, let remotePort):
        // The other end goes back to waiting for us, as in Xen.
        let remote = remoteID == d.id ? d : liveDomain(remoteID)
        if let remote {
            withBoth(d, remote) {
                // Unless the other end moved on (closed, or a restart reused the domain id).
                if remote.events.state(remotePort) == .interdomain(remote: d.id, port: port) {
                    remote.events.set(remotePort, .unbound(remote: d.id))
                }
                d.events.set(port, .free)
            }
        } else {
            d.withXen { d.events.set(port, .free) }
        }
    case .unbound, .virq, .ipi:
        d.withXen { d.events.set(port, .free) }
    }
    return 0
}

/// A domain being released: the other ends of its interdomain channels go back to waiting for it, as
/// Xen's evtchn_destroy leaves them, so a later send or close on them touches nothing of its successor.
/// Called under the scheduler lock.
func unbindPeers(_ d: Domain) {
    let channels: [(port: UInt32, remote: DomainID, remotePort: UInt32)] = d.withXen {
        var found: [(port: UInt32, remote: DomainID, remotePort: UInt32)] = []
        for port in 1 ..< UInt32(EventChannelTable.maximumPorts) {
            if case .interdomain(let remote, let remotePort)? = d.events.state(port), remote != d.id {
                found.append((port, remote, remotePort))
            }
        }
        return found
    }
    for (port, remoteID, remotePort) in channels {
        for case let remote? in domains where remote.id == remoteID && remote !== d {
            remote.withXen {
                if remote.events.state(remotePort) == .interdomain(remote: d.id, port: port) {
                    remote.events.set(remotePort, .unbound(remote: d.id))
                }
            }
        }
    }
}

private func status(_ d: Domain, _ arg: VirtualAddress) -> UInt64 {
    // struct evtchn_status { domid_t dom; evtchn_port_t port; uint32_t status, vcpu; union u; }
    guard let dom = GuestMemory.load32(arg), let port = GuestMemory.load32(arg + 4) else { return XenError.EFAULT.returnValue }
    guard isSelf(UInt16(truncatingIfNeeded: dom), d) else { return XenError.EPERM.returnValue }
    guard let (state, vcpu) = d.withXen({ d.events.state(port).map { ($0, d.events.vcpu(for: port)) } }) else {
        return XenError.EINVAL.returnValue
    }
    var code: UInt32 = 0, u0: UInt32 = 0, u1: UInt32 = 0
    switch state {
    case .free: code = 0
    case .unbound(let remote): code = 1; u0 = UInt32(remote.raw)
    case .interdomain(let remote, let rport): code = 2; u0 = UInt32(remote.raw); u1 = rport
    case .virq(let n, _): code = 4; u0 = n
    case .ipi: code = 5
    case .console: code = 2; u0 = 0x7FF2; u1 = 0     // DOMID_XEN: the hypervisor is the other end
    }
    guard GuestMemory.store32(arg + 8, code), GuestMemory.store32(arg + 12, UInt32(vcpu)),
          GuestMemory.store32(arg + 16, u0), GuestMemory.store32(arg + 20, u1) else { return XenError.EFAULT.returnValue }
    return 0
}
