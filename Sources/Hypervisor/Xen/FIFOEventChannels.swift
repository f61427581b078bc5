// The FIFO event-channel ABI for a domain that asks for it (EVTCHNOP_init_control), as Linux does
// first: its control blocks and event-array pages are pages of its own RAM, TernCore's EventChannelOp
// checks the commands' arguments and FIFOQueues does the linking; this keeps each domain's FIFO state.
// Until then, and for guests that never ask, events are 2-level.
import TernArchAsm
import TernCore

/// A domain's FIFO state; inside its events lock, which also serializes the linking.
struct FIFOState {
    var queues: FIFOQueues
    /// Host addresses of the event-array pages, in port order.
    var arrayPages: [HostPhysicalAddress] = []
    /// Host address of each vCPU's control block, once registered.
    var controlBlocks: [HostPhysicalAddress?]

    init(vcpus: Int) {
        queues = FIFOQueues(vcpus: vcpus, ports: EventChannelTable.maximumPorts)
        controlBlocks = [HostPhysicalAddress?](repeating: nil, count: vcpus)
    }
}

/// The guest memory FIFOQueues works on, for one domain.
struct GuestFIFOMemory: FIFOEventMemory {
    let arrayPages: [HostPhysicalAddress]
    let controlBlocks: [HostPhysicalAddress?]
    let upcalls: GuestUpcalls

    private func word(_ port: EventPort) -> UInt64 {
        let page = port.index / FIFOControlBlockLayout.wordsPerPage
        return arrayPages[page].raw + UInt64(port.index % FIFOControlBlockLayout.wordsPerPage * 4)
    }

    func hasWord(_ port: EventPort) -> Bool { port.index / FIFOControlBlockLayout.wordsPerPage < arrayPages.count }
    func loadWord(_ port: EventPort) -> UInt32 { tern_load32(word(port)) }
    mutating func compareExchangeWord(_ port: EventPort, expected: UInt32, desired: UInt32) -> UInt32 {
        tern_compare_exchange32(word(port), expected, desired)
    }
    func hasControlBlock(vcpu: Int) -> Bool { vcpu < controlBlocks.count && controlBlocks[vcpu] != nil }
    mutating func storeHead(vcpu: Int, priority: Int, port: EventPort) {
        guard let cb = controlBlocks[vcpu] else { return }
        tern_memory_barrier()               // the event's LINKED is visible before the head names it
        tern_store32(cb.raw + UInt64(FIFOControlBlockLayout.head + 4 * priority), port.raw)
    }
    mutating func testAndSetReady(vcpu: Int, priority: Int) -> Bool {
        guard let cb = controlBlocks[vcpu] else { return true }
        return tern_test_and_set_bit(cb.raw + UInt64(FIFOControlBlockLayout.ready), UInt32(priority)) != 0
    }
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool { upcalls.testAndSetUpcallPending(vcpu: vcpu) }
}

/// Runs `body` on the domain's FIFO queues (in place) and memory under its events lock; nil when the
/// domain uses 2-level.
func withFIFO<R>(_ d: Domain, _ body: (inout FIFOQueues, inout GuestFIFOMemory) -> R) -> R? {
    d.events.withLock { e in
        guard e.fifo != nil else { return nil }
        var memory = GuestFIFOMemory(arrayPages: e.fifo!.arrayPages, controlBlocks: e.fifo!.controlBlocks,
                                     upcalls: GuestUpcalls(domain: d, shared: e.sharedInfo))
        return body(&e.fifo!.queues, &memory)
    }
}

extension Domain {
    /// The hypervisor writes these pages for the domain from now on: pinned.
    func ram(_ address: GuestPhysicalAddress, length: UInt64) -> HostPhysicalAddress? {
        pinRAM(address, length: length)
    }

    func fifoRegisterControlBlock(vcpu: Int, at block: HostPhysicalAddress) -> Bool {
        let d = self
        let raised: [EventPort]? = events.withLock { e in
            var switched: [EventPort] = []
            if e.fifo == nil {
                // From 2-level to FIFO: ports pending in shared_info stay pending, raised again once
                // the guest gives the page their words live in.
                var state = FIFOState(vcpus: d.vcpus.count)
                if let shared = e.sharedInfo {
                    for index in 1 ..< EventChannelTable.maximumPorts where e.ports.state(EventPort(index)) != .free
                        && tern_test_bit((shared + UInt64(SharedInfoLayout.evtchnPending)).raw, UInt32(index)) != 0 {
                        switched.append(EventPort(index))
                    }
                }
                state.controlBlocks[vcpu] = block
                e.fifo = state
                d.usesFIFO = true
            } else {
                guard e.fifo!.controlBlocks[vcpu] == nil else { return nil }
                e.fifo!.controlBlocks[vcpu] = block
            }
            return switched
        }
        guard let raised else { return false }
        for port in raised { notifyPort(d, port) }          // no word yet: each waits for its page
        return true
    }

    func fifoAddArrayPage(_ page: HostPhysicalAddress) -> Bool? {
        let added: Bool? = events.withLock { e in
            guard e.fifo != nil else { return nil }
            guard e.fifo!.arrayPages.count < FIFOControlBlockLayout.maximumPages else { return false }
            e.fifo!.arrayPages.append(page)
            return true
        }
        guard added == true else { return added }
        // Events that fired before their word existed are raised now.
        let waiting = withFIFO(self) { queues, memory in queues.takeWaiting(memory) } ?? []
        for port in waiting { notifyPort(self, port) }
        return true
    }

    func fifoSetPriority(_ port: EventPort, _ priority: Int) -> Bool? {
        withFIFO(self) { queues, _ in queues.setPriority(port, priority) }
    }
}
