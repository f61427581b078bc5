import Testing
@testable import TernCore

/// event_channel_op's logic against fake tables and a fake guest memory: binding, sending, closing and
/// status as Xen answers them, and what a hostile guest gets for bad ports, domains and pointers.
@Suite struct EventChannelOpTests {
    let machine = FakeEventMachine()
    var memory = FakeGuestMemory()
    static let arg: UInt64 = 0x1000

    init() {
        machine.add(1)
        machine.add(2)
        memory.map(Self.arg)
    }

    /// Runs `command` for `caller` with `request` at `arg`: the result and the structure as it was left.
    mutating func call<Request>(_ command: EventChannelOpCommand, _ request: Request, by caller: UInt16,
                                at arg: UInt64 = arg) -> (Int64, Request) {
        _ = memory.write(request, to: VirtualAddress(arg))
        let host = FakeEventMachine.Host(machine: machine, caller: DomainID(caller))
        let r = EventChannelOp.handle(command, VirtualAddress(arg), &memory, host)
        var after = request
        _ = memory.read(&after, from: VirtualAddress(arg))
        return (r.map { Int64(bitPattern: $0) } ?? 1, after)
    }

    mutating func port(_ command: EventChannelOpCommand, _ port: EventPort, by caller: UInt16) -> Int64 {
        var p = EvtchnPort()
        p.port = port
        return call(command, p, by: caller).0
    }

    mutating func allocUnbound(by caller: UInt16, for remote: UInt16) -> (Int64, EventPort) {
        var a = EvtchnAllocUnbound()
        (a.dom, a.remoteDom) = (domidSelf, remote)
        let (r, after) = call(.alloc_unbound, a, by: caller)
        return (r, after.port)
    }

    mutating func bind(by caller: UInt16, to remote: UInt16, port remotePort: EventPort) -> (Int64, EventPort) {
        var b = EvtchnBindInterdomain()
        (b.remoteDom, b.remotePort) = (remote, remotePort)
        let (r, after) = call(.bind_interdomain, b, by: caller)
        return (r, after.localPort)
    }

    @Test func structuresHaveTheHeadersLayout() {
        #expect(MemoryLayout<EvtchnPort>.size == 4)
        #expect(MemoryLayout<EvtchnAllocUnbound>.size == 8)
        #expect(MemoryLayout<EvtchnAllocUnbound>.offset(of: \.remoteDom) == 2)
        #expect(MemoryLayout<EvtchnAllocUnbound>.offset(of: \.port) == 4)
        #expect(MemoryLayout<EvtchnBindInterdomain>.size == 12)
        #expect(MemoryLayout<EvtchnBindInterdomain>.offset(of: \.remotePort) == 4)
        #expect(MemoryLayout<EvtchnBindInterdomain>.offset(of: \.localPort) == 8)
        #expect(MemoryLayout<EvtchnBindVIRQ>.size == 12)
        #expect(MemoryLayout<EvtchnBindVIRQ>.offset(of: \.port) == 8)
        #expect(MemoryLayout<EvtchnBindIPI>.size == 8)
        #expect(MemoryLayout<EvtchnBindVCPU>.offset(of: \.vcpu) == 4)
        #expect(MemoryLayout<EvtchnStatus>.size == 24)
        #expect(MemoryLayout<EvtchnStatus>.offset(of: \.port) == 4)
        #expect(MemoryLayout<EvtchnStatus>.offset(of: \.status) == 8)
        #expect(MemoryLayout<EvtchnStatus>.offset(of: \.vcpu) == 12)
        #expect(MemoryLayout<EvtchnStatus>.offset(of: \.u0) == 16)
        #expect(MemoryLayout<EvtchnStatus>.offset(of: \.u1) == 20)
    }

    @Test mutating func twoDomainsBindAndSignalEachOther() {
        let (r1, unbound) = allocUnbound(by: 1, for: 2)
        #expect(r1 == 0 && unbound == 1)
        #expect(machine.ports(1).state(unbound) == .unbound(remote: DomainID(2)))
        let (r2, local) = bind(by: 2, to: 1, port: unbound)
        #expect(r2 == 0 && local == 1)
        #expect(machine.ports(1).state(unbound) == .interdomain(remote: DomainID(2), port: local))
        #expect(machine.ports(2).state(local) == .interdomain(remote: DomainID(1), port: unbound))
        #expect(machine.raised(2) == [local])            // Xen marks the new port pending
        #expect(port(.send, unbound, by: 1) == 0)
        #expect(machine.raised(2) == [local, local])
        #expect(port(.send, local, by: 2) == 0)
        #expect(machine.raised(1) == [unbound])
    }

    @Test mutating func aLoopbackChannelBindsToItself() {
        let (_, unbound) = allocUnbound(by: 1, for: domidSelf)
        #expect(machine.ports(1).state(unbound) == .unbound(remote: DomainID(1)))
        let (r, local) = bind(by: 1, to: domidSelf, port: unbound)
        #expect(r == 0 && local != unbound)
        #expect(port(.send, local, by: 1) == 0)
        #expect(machine.raised(1) == [local, unbound])
        #expect(port(.close, local, by: 1) == 0)
        #expect(machine.ports(1).state(unbound) == .unbound(remote: DomainID(1)))
        #expect(machine.ports(1).state(local) == .free)
    }

    @Test mutating func bindingRefusesPortsNotOfferedToTheCallerAndDomainsThatAreNotThere() {
        let (_, forSelf) = allocUnbound(by: 1, for: 1)
        #expect(bind(by: 2, to: 1, port: forSelf).0 == -22)             // offered to domain 1, not 2
        #expect(bind(by: 2, to: 1, port: 900).0 == -22)                  // free
        #expect(bind(by: 2, to: 1, port: 5000).0 == -22)                 // past the table
        #expect(bind(by: 2, to: 7, port: 1).0 == -3)                     // ESRCH
        #expect(machine.ports(2).state(1) == .free)                      // nothing was taken on failure
        #expect(machine.raised.isEmpty)
    }

    @Test mutating func allocUnboundIsForTheCallerOnly() {
        var a = EvtchnAllocUnbound()
        (a.dom, a.remoteDom) = (2, 1)
        #expect(call(.alloc_unbound, a, by: 1).0 == -1)                  // EPERM
        a.dom = 1
        #expect(call(.alloc_unbound, a, by: 1).0 == 0)
    }

    /// libxl's alloc_magic_pages: dom0 allocates the new domain's console and xenstore ports, unbound
    /// for itself (DOMID_SELF is the caller), looks at them, and its backends bind to them.
    @Test mutating func theControlDomainAllocatesAndInspectsPortsOfADomainItBuilds() {
        machine.add(0)
        var a = EvtchnAllocUnbound()
        (a.dom, a.remoteDom) = (2, domidSelf)
        let (r, after) = call(.alloc_unbound, a, by: 0)
        #expect(r == 0 && after.port != EventPort.none)
        #expect(machine.ports(2).state(after.port) == .unbound(remote: DomainID(0)))
        #expect(machine.ports(0).state(after.port) == .free)
        var s = EvtchnStatus()
        (s.dom, s.port) = (2, after.port)
        let (rs, status) = call(.status, s, by: 0)
        #expect(rs == 0 && status.status == EvtchnStatus.unbound && status.u0 == 0)
        #expect(bind(by: 0, to: 2, port: after.port).0 == 0)
        // No such domain: -ESRCH; a domU asking either for another domain: -EPERM.
        a.dom = 9
        #expect(call(.alloc_unbound, a, by: 0).0 == -3)
        s.dom = 9
        #expect(call(.status, s, by: 0).0 == -3)
        s.dom = 2
        #expect(call(.status, s, by: 1).0 == -1)
    }

    @Test mutating func aFullTableRefusesAnotherPort() {
        for _ in 1 ..< EventChannelTable.maximumPorts { #expect(allocUnbound(by: 1, for: 2).0 == 0) }
        #expect(allocUnbound(by: 1, for: 2).0 == -28)                    // ENOSPC
        var ipi = EvtchnBindIPI()
        ipi.vcpu = 0
        #expect(call(.bind_ipi, ipi, by: 1).0 == -28)
    }

    @Test mutating func sendOnEveryKindOfPort() {
        #expect(port(.send, 900, by: 1) == -22)                          // free
        #expect(port(.send, 5000, by: 1) == -22)                         // past the table
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        #expect(port(.send, unbound, by: 1) == 0)                        // nobody listens: dropped
        var virq = EvtchnBindVIRQ()
        virq.virq = 3
        let (_, bound) = call(.bind_virq, virq, by: 1)
        #expect(port(.send, bound.port, by: 1) == -22)                   // a VIRQ is the hypervisor's to raise
        let console = machine.domains[DomainID(1)]!.ports.allocate(.console)!
        #expect(port(.send, console, by: 1) == 0 && machine.consoleKicks == 1)
        #expect(machine.raised.isEmpty)
    }

    @Test mutating func aSendReachesNoSuccessorOfTheDomainItWasBoundTo() {
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        let (_, local) = bind(by: 2, to: 1, port: unbound)
        // Domain 1 restarts: same id, fresh table, the old port now offered to someone else.
        machine.add(1)
        _ = allocUnbound(by: 1, for: 3)
        #expect(port(.send, local, by: 2) == 0)
        #expect(machine.raised(1).isEmpty)
        // Gone for good: the send is dropped, nothing fails.
        machine.domains[DomainID(1)] = nil
        #expect(port(.send, local, by: 2) == 0)
        #expect(machine.raised(1).isEmpty)
    }

    @Test mutating func closeSendsTheOtherEndBackToWaiting() {
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        let (_, local) = bind(by: 2, to: 1, port: unbound)
        #expect(port(.close, local, by: 2) == 0)
        #expect(machine.closing == [local])
        #expect(machine.ports(2).state(local) == .free)
        #expect(machine.ports(1).state(unbound) == .unbound(remote: DomainID(2)))
        // ...and it can be bound again.
        #expect(bind(by: 2, to: 1, port: unbound).0 == 0)
    }

    @Test mutating func closeLeavesAnEndThatMovedOnAndFreesWhenThePeerIsGone() {
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        let (_, local) = bind(by: 2, to: 1, port: unbound)
        #expect(port(.close, unbound, by: 1) == 0)
        #expect(machine.ports(2).state(local) == .unbound(remote: DomainID(1)))
        _ = allocUnbound(by: 1, for: 3)                                  // port `unbound` now offered to 3
        machine.domains[DomainID(1)]!.ports.set(unbound, .unbound(remote: DomainID(3)))
        machine.domains[DomainID(2)]!.ports.set(local, .interdomain(remote: DomainID(1), port: unbound))
        #expect(port(.close, local, by: 2) == 0)
        #expect(machine.ports(1).state(unbound) == .unbound(remote: DomainID(3)))   // not ours to reset
        let (_, again) = allocUnbound(by: 2, for: 1)
        let (_, peer) = bind(by: 1, to: 2, port: again)
        machine.domains[DomainID(2)] = nil
        #expect(port(.close, peer, by: 1) == 0)
        #expect(machine.ports(1).state(peer) == .free)
    }

    @Test mutating func closeRefusesTheConsolePortAFreePortAndPortZero() {
        let console = machine.domains[DomainID(1)]!.ports.allocate(.console)!
        #expect(port(.close, console, by: 1) == -22)
        #expect(machine.ports(1).state(console) == .console)
        #expect(port(.close, 0, by: 1) == -22)
        #expect(port(.close, 900, by: 1) == -22)
        #expect(port(.close, 5000, by: 1) == -22)
        #expect(machine.closing.isEmpty)
    }

    @Test mutating func virqsAreOnePerVCPUAndInRange() {
        var virq = EvtchnBindVIRQ()
        (virq.virq, virq.vcpu) = (1, 1)
        let (r, bound) = call(.bind_virq, virq, by: 1)
        #expect(r == 0 && machine.ports(1).state(bound.port) == .virq(1, vcpu: 1))
        #expect(machine.ports(1).vcpu(for: bound.port) == 1)
        #expect(call(.bind_virq, virq, by: 1).0 == -17)                  // EEXIST
        virq.vcpu = 0
        #expect(call(.bind_virq, virq, by: 1).0 == 0)                    // the same VIRQ for another vCPU
        virq.virq = EventChannelOp.virqCount
        #expect(call(.bind_virq, virq, by: 1).0 == -22)
        (virq.virq, virq.vcpu) = (1, 2)
        #expect(call(.bind_virq, virq, by: 1).0 == -22)                  // domain 1 has 2 vCPUs
        // A global VIRQ (VIRQ_DOM_EXC, the console's) is bound on vCPU 0 only, as on Xen.
        (virq.virq, virq.vcpu) = (VIRQ.domainException.rawValue, 1)
        #expect(call(.bind_virq, virq, by: 1).0 == -22)
        virq.vcpu = 0
        #expect(call(.bind_virq, virq, by: 1).0 == 0)
    }

    @Test mutating func ipisStayOnTheirVCPUAndOtherPortsMove() {
        var ipi = EvtchnBindIPI()
        ipi.vcpu = 7
        #expect(call(.bind_ipi, ipi, by: 1).0 == -2)                     // ENOENT
        ipi.vcpu = 1
        let (r, bound) = call(.bind_ipi, ipi, by: 1)
        #expect(r == 0 && machine.ports(1).state(bound.port) == .ipi(vcpu: 1))
        #expect(port(.send, bound.port, by: 1) == 0 && machine.raised(1) == [bound.port])
        var move = EvtchnBindVCPU()
        (move.port, move.vcpu) = (bound.port, 0)
        #expect(call(.bind_vcpu, move, by: 1).0 == -22)                  // an IPI's vCPU is fixed
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        (move.port, move.vcpu) = (unbound, 1)
        #expect(call(.bind_vcpu, move, by: 1).0 == 0 && machine.ports(1).vcpu(for: unbound) == 1)
        move.vcpu = 7
        #expect(call(.bind_vcpu, move, by: 1).0 == -2)
        (move.port, move.vcpu) = (900, 0)
        #expect(call(.bind_vcpu, move, by: 1).0 == -22)
    }

    @Test mutating func unmaskDeliversToTheBoundVCPUOfAPortInRange() {
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        var move = EvtchnBindVCPU()
        (move.port, move.vcpu) = (unbound, 1)
        _ = call(.bind_vcpu, move, by: 1)
        #expect(port(.unmask, unbound, by: 1) == 0)
        #expect(port(.unmask, 5000, by: 1) == -22)
        #expect(machine.unmasked.count == 1 && machine.unmasked[0] == (unbound, 1))
    }

    @Test mutating func statusDescribesEachKindOfPort() {
        let (_, unbound) = allocUnbound(by: 1, for: 2)
        let (_, local) = bind(by: 2, to: 1, port: unbound)
        var virq = EvtchnBindVIRQ()
        virq.virq = 5
        let virqPort = call(.bind_virq, virq, by: 2).1.port
        let console = machine.domains[DomainID(2)]!.ports.allocate(.console)!
        func status(_ p: EventPort, dom: UInt16 = domidSelf, by caller: UInt16 = 2) -> (Int64, EvtchnStatus) {
            var s = EvtchnStatus()
            (s.dom, s.port, s.u1) = (dom, p, 0xDEAD)
            var me = self
            return me.call(.status, s, by: caller)
        }
        let interdomain = status(local)
        #expect(interdomain.0 == 0 && interdomain.1.status == EvtchnStatus.interdomain)
        #expect(interdomain.1.u0 == 1 && interdomain.1.u1 == unbound.raw)
        #expect(status(unbound, by: 1).0 == 0)
        #expect(status(virqPort).1.status == EvtchnStatus.virq && status(virqPort).1.u0 == 5)
        #expect(status(console).1.status == EvtchnStatus.interdomain && status(console).1.u0 == 0x7FF2)
        let free = status(900)
        #expect(free.0 == 0 && free.1.status == EvtchnStatus.closed && free.1.u1 == 0)
        #expect(status(local, dom: 2).0 == 0)
        #expect(status(local, dom: 1).0 == -1)                           // another domain's: EPERM
        #expect(status(5000).0 == -22)
    }

    @Test mutating func badPointersGetEFAULTAndChangeNothing() {
        let commands: [EventChannelOpCommand] = [.send, .unmask, .alloc_unbound, .bind_interdomain, .bind_virq,
                                                 .bind_ipi, .bind_vcpu, .close, .status, .init_control,
                                                 .expand_array, .set_priority]
        for command in commands {
            let host = FakeEventMachine.Host(machine: machine, caller: DomainID(1))
            #expect(EventChannelOp.handle(command, VirtualAddress(0x9000), &memory, host) == XenError.EFAULT.returnValue)
            // A structure that runs off the end of the mapped page.
            #expect(EventChannelOp.handle(command, VirtualAddress(Self.arg + 0xFFE), &memory, host) == XenError.EFAULT.returnValue)
        }
        for port in 1 ..< EventChannelTable.maximumPorts { #expect(machine.ports(1).state(EventPort(port)) == .free) }
        #expect(machine.raised.isEmpty && machine.unmasked.isEmpty && machine.closing.isEmpty)
        #expect(machine.controlBlocks.isEmpty && machine.arrayPages.isEmpty)
    }

    @Test mutating func anAnswerThatCannotBeWrittenIsEFAULT() {
        // A read-only page reads as zeros: alloc_unbound by domain 0 for domain 0, whose answer is refused.
        memory.map(0x2000, writable: false)
        machine.add(0)
        let host = FakeEventMachine.Host(machine: machine, caller: DomainID(0))
        #expect(EventChannelOp.handle(.alloc_unbound, VirtualAddress(0x2000), &memory, host) == XenError.EFAULT.returnValue)
    }

    @Test mutating func theCommandsTernLacksAreLeftToTheHypervisor() {
        let host = FakeEventMachine.Host(machine: machine, caller: DomainID(1))
        for command in [EventChannelOpCommand.bind_pirq, .reset] {
            #expect(EventChannelOp.handle(command, VirtualAddress(Self.arg), &memory, host) == nil)
        }
    }

    @Test func fifoStructuresHaveTheHeadersLayout() {
        #expect(MemoryLayout<EvtchnInitControl>.size == 24)
        #expect(MemoryLayout<EvtchnInitControl>.offset(of: \.offset) == 8)
        #expect(MemoryLayout<EvtchnInitControl>.offset(of: \.vcpu) == 12)
        #expect(MemoryLayout<EvtchnInitControl>.offset(of: \.linkBits) == Int(EvtchnInitControl.linkBitsOffset))
        #expect(MemoryLayout<EvtchnExpandArray>.size == 8)
        #expect(MemoryLayout<EvtchnSetPriority>.size == 8 && MemoryLayout<EvtchnSetPriority>.offset(of: \.priority) == 4)
    }

    mutating func initControl(gfn: UInt64, offset: UInt32, vcpu: UInt32, by caller: UInt16 = 1) -> (Int64, UInt8) {
        var request = EvtchnInitControl()
        (request.controlGFN, request.offset, request.vcpu) = (gfn, offset, vcpu)
        let (r, after) = call(.init_control, request, by: caller)
        return (r, after.linkBits)
    }

    @Test mutating func initControlPlacesAControlBlockInTheCallersRAM() {
        #expect(initControl(gfn: 0x40010, offset: 64, vcpu: 1) == (0, 17))              // link_bits answered
        #expect(machine.controlBlocks[DomainID(1)]?[1] == HostPhysicalAddress(0x1_4001_0040))
        #expect(initControl(gfn: 0x40011, offset: 0, vcpu: 1).0 == -22)                  // that vCPU has one
        #expect(initControl(gfn: 0x40011, offset: 0, vcpu: 2).0 == -2)                   // ENOENT: 2 vCPUs
        #expect(initControl(gfn: 0x40011, offset: 4, vcpu: 0).0 == -22)                  // misaligned
        #expect(initControl(gfn: 0x40011, offset: 4088, vcpu: 0).0 == -22)               // past the page
        #expect(initControl(gfn: 0x10, offset: 0, vcpu: 0).0 == -22)                     // outside RAM
        #expect(initControl(gfn: 1 << 36, offset: 0, vcpu: 0).0 == -22)                  // no such frame
        #expect(machine.controlBlocks[DomainID(1)]?.count == 1)
    }

    @Test mutating func arrayPagesAndPrioritiesNeedFIFO() {
        var expand = EvtchnExpandArray()
        expand.arrayGFN = 0x40020
        #expect(call(.expand_array, expand, by: 1).0 == -95)                            // EOPNOTSUPP: 2-level
        let (_, port) = allocUnbound(by: 1, for: 2)
        var priority = EvtchnSetPriority()
        (priority.port, priority.priority) = (port, 3)
        #expect(call(.set_priority, priority, by: 1).0 == -38)                          // ENOSYS: 2-level
        _ = initControl(gfn: 0x40010, offset: 0, vcpu: 0)
        #expect(call(.expand_array, expand, by: 1).0 == 0)
        #expect(machine.arrayPages[DomainID(1)] == [HostPhysicalAddress(0x1_4002_0000)])
        expand.arrayGFN = 0x50000
        #expect(call(.expand_array, expand, by: 1).0 == -22)                            // outside RAM
        expand.arrayGFN = 0x40021
        _ = call(.expand_array, expand, by: 1)
        #expect(call(.expand_array, expand, by: 1).0 == -28)                            // ENOSPC: the host is full
        #expect(call(.set_priority, priority, by: 1).0 == 0 && machine.priorities[port] == 3)
        priority.priority = 16
        #expect(call(.set_priority, priority, by: 1).0 == -22)
        (priority.port, priority.priority) = (900, 1)
        #expect(call(.set_priority, priority, by: 1).0 == -22)                          // a free port
    }
}
