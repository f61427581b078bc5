// The FIFO event-channel ABI (EVTCHNOP_init_control), which Linux prefers when the hypervisor offers
// it, as Xen does since 4.4. Each port has a 32-bit event word in pages the guest gives
// (expand_array): PENDING, MASKED, LINKED and BUSY flags and a 17-bit LINK to the next port. Each vCPU
// has a control block with a READY bit and a queue HEAD per priority (16 priorities). The hypervisor
// appends a pending, unmasked event to the tail of its vCPU's queue by writing the old tail's LINK,
// or the HEAD when the queue was empty, and raises READY; the guest walks the queue from HEAD,
// clearing LINKED as it goes. Tails are the hypervisor's own; the words and the control block are
// shared with the guest, which changes them concurrently, hence compare-and-swap throughout.

public enum FIFOEventWord {
    public static let pending: UInt32 = 1 << 31
    public static let masked: UInt32 = 1 << 30
    public static let linked: UInt32 = 1 << 29
    public static let busy: UInt32 = 1 << 28
    public static let linkMask: UInt32 = (1 << 17) - 1
    public static let linkBits: UInt8 = 17
}

/// struct evtchn_fifo_control_block { uint32_t ready; uint32_t _rsvd; uint32_t head[16]; }
public enum FIFOControlBlockLayout {
    public static let ready = 0, head = 8, size = 72
    public static let priorities = 16
    public static let defaultPriority = 7
    /// Event words per array page, and the pages a domain may give (2^17 ports in all).
    public static let wordsPerPage = 1024
    public static let maximumPages = 128
}

/// The guest memory the protocol works on, atomically.
public protocol FIFOEventMemory {
    /// Whether `port` has an event word (its array page was given).
    func hasWord(_ port: EventPort) -> Bool
    func loadWord(_ port: EventPort) -> UInt32
    /// Stores `desired` if the word still holds `expected`; returns what it held.
    mutating func compareExchangeWord(_ port: EventPort, expected: UInt32, desired: UInt32) -> UInt32
    /// Whether `vcpu` has registered its control block.
    func hasControlBlock(vcpu: Int) -> Bool
    mutating func storeHead(vcpu: Int, priority: Int, port: EventPort)
    /// Sets READY bit `priority` of `vcpu`; returns its previous value.
    mutating func testAndSetReady(vcpu: Int, priority: Int) -> Bool
    /// Sets the vCPU's upcall-pending flag (vcpu_info); returns its previous value.
    mutating func testAndSetUpcallPending(vcpu: Int) -> Bool
}

/// The hypervisor's side of one domain's queues: each queue's tail, and each port's priority, last
/// queue and whether it fired before it had a word.
public struct FIFOQueues: Sendable {
    private var tails: [EventPort]
    private var vcpus: Int
    private var priority: [UInt8]
    private var lastQueue: [UInt16]
    private var waiting: [Bool]

    public init(vcpus: Int, ports: Int) {
        self.vcpus = vcpus
        tails = [EventPort](repeating: .none, count: vcpus * FIFOControlBlockLayout.priorities)
        priority = [UInt8](repeating: UInt8(FIFOControlBlockLayout.defaultPriority), count: ports)
        lastQueue = [UInt16](repeating: UInt16(FIFOControlBlockLayout.defaultPriority), count: ports)
        waiting = [Bool](repeating: false, count: ports)
    }

    private func queue(vcpu: Int, priority: Int) -> Int { vcpu * FIFOControlBlockLayout.priorities + priority }

    /// A port (re)bound: default priority, no queue history.
    public mutating func reset(_ port: EventPort) {
        guard port.index < priority.count else { return }
        priority[port.index] = UInt8(FIFOControlBlockLayout.defaultPriority)
        waiting[port.index] = false
    }

    /// A port closed: not pending any more (the guest skips it if it is still queued), and its next
    /// binding starts afresh.
    public mutating func close<Memory: FIFOEventMemory>(_ memory: inout Memory, port: EventPort) {
        reset(port)
        guard port.index < priority.count, memory.hasWord(port) else { return }
        _ = Self.update(&memory, port) { $0 & FIFOEventWord.pending != 0 ? $0 & ~FIFOEventWord.pending : nil }
    }

    /// SharedWord.update on `port`'s event word.
    private static func update<Memory: FIFOEventMemory>(_ memory: inout Memory, _ port: EventPort,
                                                        _ change: (UInt32) -> UInt32?) -> UInt32? {
        SharedWord.update(memory.loadWord(port), change) { memory.compareExchangeWord(port, expected: $0, desired: $1) }
    }

    /// EVTCHNOP_set_priority.
    public mutating func setPriority(_ port: EventPort, _ p: Int) -> Bool {
        guard port.index < priority.count, p >= 0, p < FIFOControlBlockLayout.priorities else { return false }
        priority[port.index] = UInt8(p)
        return true
    }

    /// Ports that fired before their word existed and now have one: to be raised again.
    public mutating func takeWaiting<Memory: FIFOEventMemory>(_ memory: Memory) -> [EventPort] {
        var ready: [EventPort] = []
        for port in 1 ..< waiting.count where waiting[port] && memory.hasWord(EventPort(port)) {
            waiting[port] = false
            ready.append(EventPort(port))
        }
        return ready
    }

    /// Port `port` fired for `vcpu`. Returns true when that vCPU must be interrupted.
    public mutating func setPending<Memory: FIFOEventMemory>(_ memory: inout Memory, port: EventPort, vcpu: Int) -> Bool {
        guard port.index < priority.count, vcpu < vcpus else { return false }
        guard memory.hasWord(port) else {
            waiting[port.index] = true
            return false
        }
        guard Self.update(&memory, port, { $0 & FIFOEventWord.pending == 0 ? $0 | FIFOEventWord.pending : nil }) != nil else {
            return false
        }
        return link(&memory, port: port, vcpu: vcpu)
    }

    /// EVTCHNOP_unmask: the guest cleared MASKED (or asks for it) while the event was pending.
    public mutating func unmask<Memory: FIFOEventMemory>(_ memory: inout Memory, port: EventPort, vcpu: Int) -> Bool {
        guard port.index < priority.count, vcpu < vcpus, memory.hasWord(port) else { return false }
        guard let before = Self.update(&memory, port, { $0 & FIFOEventWord.masked != 0 ? $0 & ~FIFOEventWord.masked : nil }),
              before & FIFOEventWord.pending != 0 else { return false }
        return link(&memory, port: port, vcpu: vcpu)
    }

    /// Appends a pending, unmasked, unlinked event to its queue. The caller serializes calls for one
    /// domain (the guest's own changes to the words are what the atomics are for).
    private mutating func link<Memory: FIFOEventMemory>(_ memory: inout Memory, port: EventPort, vcpu: Int) -> Bool {
        guard memory.loadWord(port) & (FIFOEventWord.masked | FIFOEventWord.linked) == 0 else { return false }
        // A guest must not unmask before its control block is there: such an event is dropped.
        guard memory.hasControlBlock(vcpu: vcpu) else { return false }
        guard let before = Self.update(&memory, port, { $0 & FIFOEventWord.linked == 0 ? $0 | FIFOEventWord.linked : nil }),
              before & FIFOEventWord.linked == 0 else { return false }
        let p = Int(priority[port.index])
        let q = queue(vcpu: vcpu, priority: p)
        // Where the event was queued last: if it was that queue's tail, that queue is empty by now,
        // and its stale tail must not be linked to (it may sit in another queue soon).
        let old = Int(lastQueue[port.index])
        if old < tails.count && tails[old] == port { tails[old] = .none }
        lastQueue[port.index] = UInt16(q)

        var linked = false
        let tail = tails[q]
        if tail != .none && memory.hasWord(tail) { linked = Self.setLink(&memory, tail: tail, to: port) }
        if !linked { memory.storeHead(vcpu: vcpu, priority: p, port: port) }
        tails[q] = port
        guard !linked, !memory.testAndSetReady(vcpu: vcpu, priority: p) else { return false }
        return !memory.testAndSetUpcallPending(vcpu: vcpu)
    }

    /// Sets the tail's LINK to `port` if the tail is still LINKED (else the guest has consumed it and
    /// the queue is empty). The guest may set or clear MASKED meanwhile; BUSY stops it unmasking.
    private static func setLink<Memory: FIFOEventMemory>(_ memory: inout Memory, tail: EventPort, to port: EventPort) -> Bool {
        func attempt(_ w: UInt32) -> (done: Bool, linked: Bool, seen: UInt32) {
            guard w & FIFOEventWord.linked != 0 else { return (true, false, w) }
            let desired = (w & ~(FIFOEventWord.busy | FIFOEventWord.linkMask)) | port.raw
            let seen = memory.compareExchangeWord(tail, expected: w, desired: desired)
            return (seen == w, seen == w, seen)
        }
        var w = memory.loadWord(tail)
        let first = attempt(w)
        if first.done { return first.linked }
        // Lock the word against unmasking: after that the guest can change it at most a few times.
        guard let before = update(&memory, tail, { $0 | FIFOEventWord.busy }) else { return true }
        w = before | FIFOEventWord.busy
        for _ in 0 ..< 4 {
            let r = attempt(w)
            if r.done {
                if !r.linked { clearBusy(&memory, tail) }
                return r.linked
            }
            w = r.seen
        }
        clearBusy(&memory, tail)
        return true          // as Xen: the guest kept changing the word; the event is dropped
    }

    private static func clearBusy<Memory: FIFOEventMemory>(_ memory: inout Memory, _ port: EventPort) {
        _ = update(&memory, port) { $0 & FIFOEventWord.busy != 0 ? $0 & ~FIFOEventWord.busy : nil }
    }
}
