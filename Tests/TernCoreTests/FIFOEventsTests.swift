import Testing
import TernCore

/// Event words and control blocks in plain arrays, with a guest that consumes as Linux's
/// events_fifo.c does.
private struct FakeFIFO: FIFOEventMemory {
    var words: [UInt32]
    var pages: Int
    var heads = [[UInt32]](repeating: [UInt32](repeating: 0, count: 16), count: 2)
    var ready = [UInt32](repeating: 0, count: 2)
    var upcall = [Bool](repeating: false, count: 2)
    var controlBlocks = [true, false]

    init(ports: Int, pages: Int) {
        words = [UInt32](repeating: 0, count: ports)
        self.pages = pages
    }

    func hasWord(_ port: EventPort) -> Bool { port.index < pages * 1024 }
    func loadWord(_ port: EventPort) -> UInt32 { words[port.index] }
    mutating func compareExchangeWord(_ port: EventPort, expected: UInt32, desired: UInt32) -> UInt32 {
        let seen = words[port.index]
        if seen == expected { words[port.index] = desired }
        return seen
    }
    func hasControlBlock(vcpu: Int) -> Bool { controlBlocks[vcpu] }
    mutating func storeHead(vcpu: Int, priority: Int, port: EventPort) { heads[vcpu][priority] = port.raw }
    mutating func testAndSetReady(vcpu: Int, priority: Int) -> Bool {
        let was = ready[vcpu] & 1 << priority != 0
        ready[vcpu] |= 1 << priority
        return was
    }
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool {
        let was = upcall[vcpu]
        upcall[vcpu] = true
        return was
    }

    /// The guest's upcall handler for vCPU 0, priority 7: takes the queue from HEAD to its end,
    /// clearing LINKED (and PENDING, as its handlers do), and returns the ports in order.
    mutating func consume(from saved: inout UInt32) -> [UInt32] {
        upcall[0] = false
        ready[0] = 0
        var taken: [UInt32] = []
        var head = saved != 0 ? saved : heads[0][7]
        while head != 0 {
            let w = words[Int(head)]
            words[Int(head)] = w & ~(FIFOEventWord.linked | FIFOEventWord.linkMask | FIFOEventWord.pending)
            taken.append(head)
            head = w & FIFOEventWord.linkMask
        }
        saved = 0
        return taken
    }
}

struct FIFOEventsTests {
    @Test func eventsQueueInOrderWithOneUpcall() {
        var m = FakeFIFO(ports: 2048, pages: 1)
        var q = FIFOQueues(vcpus: 2, ports: 2048)
        #expect(q.setPending(&m, port: 5, vcpu: 0))           // empty queue: HEAD, READY, upcall
        #expect(m.heads[0][7] == 5 && m.ready[0] == 1 << 7)
        #expect(!q.setPending(&m, port: 9, vcpu: 0))          // linked behind 5, no second upcall
        #expect(!q.setPending(&m, port: 5, vcpu: 0))          // already pending and linked
        #expect(m.words[5] & FIFOEventWord.linkMask == 9)
        var saved: UInt32 = 0
        #expect(m.consume(from: &saved) == [5, 9])
        // The queue emptied: the next event starts it again, through HEAD and a new upcall.
        #expect(q.setPending(&m, port: 9, vcpu: 0))
        #expect(m.heads[0][7] == 9)
        #expect(m.consume(from: &saved) == [9])
    }

    @Test func maskedEventsWaitForTheUnmask() {
        var m = FakeFIFO(ports: 2048, pages: 1)
        var q = FIFOQueues(vcpus: 2, ports: 2048)
        m.words[3] = FIFOEventWord.masked
        #expect(!q.setPending(&m, port: 3, vcpu: 0))
        #expect(m.words[3] == FIFOEventWord.masked | FIFOEventWord.pending)
        #expect(q.unmask(&m, port: 3, vcpu: 0))
        #expect(m.words[3] == FIFOEventWord.pending | FIFOEventWord.linked && m.heads[0][7] == 3)
        // Unmasking an event that is not pending links nothing.
        m.words[4] = FIFOEventWord.masked
        #expect(!q.unmask(&m, port: 4, vcpu: 0) && m.words[4] == 0)
    }

    @Test func priorityPicksTheQueueAndEachQueueItsReadyBit() {
        var m = FakeFIFO(ports: 2048, pages: 1)
        var q = FIFOQueues(vcpus: 2, ports: 2048)
        #expect(q.setPriority(6, 2) && !q.setPriority(6, 16))
        #expect(q.setPending(&m, port: 6, vcpu: 0))
        #expect(m.heads[0][2] == 6 && m.ready[0] == 1 << 2)
        // A second priority on the same vCPU raises its READY bit but the upcall is already pending.
        #expect(!q.setPending(&m, port: 7, vcpu: 0))
        #expect(m.heads[0][7] == 7 && m.ready[0] == (1 << 2 | 1 << 7))
    }

    @Test func eventsBeforeTheirPageOrControlBlockAreHeldOrDropped() {
        var m = FakeFIFO(ports: 4096, pages: 1)
        var q = FIFOQueues(vcpus: 2, ports: 4096)
        #expect(!q.setPending(&m, port: 1500, vcpu: 0))       // no word yet: remembered
        #expect(q.takeWaiting(m).isEmpty)
        m.pages = 2
        #expect(q.takeWaiting(m) == [1500])
        #expect(q.takeWaiting(m).isEmpty)
        // vCPU 1 has no control block: the event is pending but not queued.
        #expect(!q.setPending(&m, port: 8, vcpu: 1))
        #expect(m.words[8] == FIFOEventWord.pending)
    }

    @Test func aBusyOrChangingTailIsStillLinkedOnce() {
        var m = FakeFIFO(ports: 2048, pages: 1)
        var q = FIFOQueues(vcpus: 2, ports: 2048)
        #expect(q.setPending(&m, port: 10, vcpu: 0))
        m.words[10] |= FIFOEventWord.masked                    // the guest masks the tail meanwhile
        #expect(!q.setPending(&m, port: 11, vcpu: 0))
        #expect(m.words[10] & FIFOEventWord.linkMask == 11 && m.words[10] & FIFOEventWord.busy == 0)
        #expect(m.words[10] & FIFOEventWord.masked != 0)
    }
}

struct SharedWordTests {
    @Test func retriesUntilTheChangeSticksOrDeclines() {
        var word: UInt32 = 0b0001
        var races = 3
        func exchange(_ expected: UInt32, _ desired: UInt32) -> UInt32 {
            if races > 0 { races -= 1; word ^= 0b1000; return word }       // the guest moved it again
            let seen = word
            if seen == expected { word = desired }
            return seen
        }
        #expect(SharedWord.update(word, { $0 | 0b0100 }, exchange: exchange) == 0b1001)
        #expect(word == 0b1101)
        #expect(SharedWord.update(word, { _ in nil }, exchange: exchange) == 0b1101)
    }

    @Test func aGuestThatNeverStopsOnlyLosesItsOwnUpdate() {
        var word: UInt32 = 0
        let result = SharedWord.update(word, { $0 | 1 }) { _, _ in
            word &+= 2                                                     // changed before every attempt
            return word
        }
        #expect(result == nil && word == UInt32(2 * SharedWord.attempts))
    }
}
