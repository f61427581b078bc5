import Testing
@testable import TernCore

/// shared_info and vcpu_info bits as plain arrays.
struct FakeBits: EventBits {
    var pending = [UInt64](repeating: 0, count: 64)
    var mask = [UInt64](repeating: 0, count: 64)
    var selector: [UInt64?] = [0, 0]
    var upcall = [false, false]

    mutating func testAndSetPending(_ port: EventPort) -> Bool { flip(&pending, port.raw, to: true) }
    func isPending(_ port: EventPort) -> Bool { pending[Int(port.raw / 64)] & (1 << UInt64(port.raw % 64)) != 0 }
    func isMasked(_ port: EventPort) -> Bool { mask[Int(port.raw / 64)] & (1 << UInt64(port.raw % 64)) != 0 }
    mutating func testAndClearMask(_ port: EventPort) -> Bool { flip(&mask, port.raw, to: false) }
    mutating func testAndSetSelector(vcpu: Int, word: UInt32) -> Bool? {
        guard let s = selector[vcpu] else { return nil }
        selector[vcpu] = s | 1 << UInt64(word)
        return s & (1 << UInt64(word)) != 0
    }
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool {
        defer { upcall[vcpu] = true }
        return upcall[vcpu]
    }

    private func flip(_ words: inout [UInt64], _ port: UInt32, to on: Bool) -> Bool {
        let bit: UInt64 = 1 << UInt64(port % 64)
        let old = words[Int(port / 64)] & bit != 0
        if on { words[Int(port / 64)] |= bit } else { words[Int(port / 64)] &= ~bit }
        return old
    }
}

@Suite struct EventChannelsTests {
    /// A port is the uint32_t of Xen's structures; port 0 means none.
    @Test func aPortIsXensEvtchnPortT() {
        #expect(MemoryLayout<EventPort>.size == 4 && MemoryLayout<EventPort>.alignment == 4)
        #expect(EventPort.none.raw == 0 && EventPort(1023).index == 1023)
        var table = EventChannelTable()
        #expect(table.allocate(.console) == EventPort(1))         // never port 0
    }

    @Test func firstEventOnAPortRaisesTheUpcallOnce() {
        var bits = FakeBits()
        #expect(TwoLevelEvents.setPending(&bits, port: 70, vcpu: 1))
        #expect(bits.isPending(70))
        #expect(bits.selector[1] == 1 << 1)
        #expect(bits.upcall == [false, true])
        // Still pending and already announced: nothing more to do.
        #expect(!TwoLevelEvents.setPending(&bits, port: 70, vcpu: 1))
        // Another port in another word while the upcall is still up: its selector bit, no new interrupt.
        #expect(!TwoLevelEvents.setPending(&bits, port: 3, vcpu: 1))
        #expect(bits.selector[1] == 1 << 1 | 1)
    }

    @Test func maskedPortStaysQuietUntilUnmasked() {
        var bits = FakeBits()
        bits.mask[0] = 1 << 5
        #expect(!TwoLevelEvents.setPending(&bits, port: 5, vcpu: 0))
        #expect(bits.isPending(5) && bits.selector[0] == 0 && !bits.upcall[0])
        #expect(TwoLevelEvents.unmask(&bits, port: 5, vcpu: 0))
        #expect(!bits.isMasked(5) && bits.upcall[0])
        // Unmasking a port that is not masked, or not pending, announces nothing.
        #expect(!TwoLevelEvents.unmask(&bits, port: 5, vcpu: 0))
        bits.mask[0] |= 1 << 6
        #expect(!TwoLevelEvents.unmask(&bits, port: 6, vcpu: 0))
    }

    @Test func vcpuWithoutVCPUInfoIsNotInterrupted() {
        var bits = FakeBits()
        bits.selector[1] = nil
        #expect(!TwoLevelEvents.setPending(&bits, port: 9, vcpu: 1))
        #expect(bits.isPending(9))
    }

    @Test func portsAreAllocatedFromOneAndFreedForReuse() {
        var table = EventChannelTable()
        #expect(table.allocate(.console) == 1)
        #expect(table.allocate(.virq(3, vcpu: 1), vcpu: 1) == 2)
        #expect(table.port(forVIRQ: 3, vcpu: 1) == 2)
        #expect(table.port(forVIRQ: 3, vcpu: 0) == nil)
        // Moving its upcalls to another vCPU (EVTCHNOP_bind_vcpu) does not change what it is bound to.
        table.bind(2, toVCPU: 0)
        #expect(table.port(forVIRQ: 3, vcpu: 1) == 2)
        #expect(table.vcpu(for: 2) == 0)
        table.set(1, .free)
        #expect(table.allocate(.unbound(remote: DomainID(0))) == 1)
        #expect(table.state(EventPort(EventChannelTable.maximumPorts)) == nil)
        table.set(0, .console)
        #expect(table.state(0) == .free)
    }
}
