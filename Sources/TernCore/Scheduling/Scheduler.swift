// Proportional-share scheduling of vCPUs onto physical CPUs, in the spirit of Xen's credit scheduler but
// phrased as virtual time: each domain's run time is scaled by 1/weight, and the pCPU goes to the runnable
// vCPU whose domain is furthest behind. Over any busy interval, domains therefore receive CPU in
// proportion to their weights; a cap additionally limits a domain to a share of each fixed period even
// when the CPU would otherwise idle.
//
// This is policy only. The hypervisor owns the clock (passed in as Nanoseconds; plain UInt64 inside,
// where the arithmetic is), the timers (it arms one for `deadline(pcpu:)` after every `pick`) and the
// run-queue locks. Domains and vCPUs are slot indices chosen by the caller, below the capacities given
// at creation or by `grow`.
//
// Each pCPU has a run queue, a heap ordered by domain virtual time, so a pick costs O(pCPUs + log n)
// however many domains there are. A queue keeps each vCPU's virtual time as of when it was queued; a
// domain's virtual time only grows, so a stale key is too small, never too large, and the head is
// refreshed until it is current, which makes it the true minimum of its queue.
//
// Locks. Each pCPU's run queue has a lock, held by the caller: it guards the queue, the pCPU's record,
// and every vCPU whose queue it is (`vcpus[v].queue`: where it waits, runs, or last ran). Calls that
// change the whole (domains and vCPUs coming and going, affinity, parameters, `grow`) are made with
// every queue's lock held. A vCPU changes queue only with both queues' locks held, and never while it
// runs. A domain's accounting (its virtual time, cap budget, runnable count), which its vCPUs on
// several pCPUs change at once, has a lock of its own inside the scheduler, innermost. Other pCPUs'
// records and queue heads are read without their locks, as hints (a domain's virtual time only grows),
// and acted on only under the lock.
//
// Balancing rule: a pick compares its own queue with one other, its `partner`: the queue whose head
// (allowed here, not throttled) is furthest behind, if that is behind what this pCPU has; with nothing
// at all here, any queue holding a vCPU it may run. The caller locks the partner too, and the pick
// takes the better of the two heads, so a vCPU waiting anywhere reaches a pCPU that is free for it
// and, with no affinity, the choice is the machine-wide best as far as the heads tell. A preempted
// vCPU queues where it ran; a woken one on an idle pCPU it may use (which the caller kicks) if that
// queue's lock is free, else where it last ran, to be taken from there by the kicked pCPU's pick.

import Synchronization

public struct SchedulerParameters: Sendable {
    /// How long a vCPU runs before its pCPU reconsiders; also the most credit a sleeper may bank.
    public var slice: Nanoseconds
    /// The window over which caps are enforced.
    public var capPeriod: Nanoseconds
    /// How long a vCPU runs before a woken one may take its pCPU (Xen's sched_ratelimit_us, 1 ms).
    public var minimumRun: Nanoseconds

    public init(slice: Nanoseconds = .milliseconds(10), capPeriod: Nanoseconds = .milliseconds(30),
                minimumRun: Nanoseconds = .milliseconds(1)) {
        self.slice = slice
        self.capPeriod = capPeriod
        self.minimumRun = minimumRun
    }
}

public struct Scheduler: ~Copyable {
    struct Domain {
        var present = false
        var weight: UInt64 = 1
        var cap: UInt64 = 0
        /// Run time times `weightUnit / weight`: the quantity fairness equalises. It never decreases.
        var virtualTime: UInt64 = 0
        /// The part of a charge too small to move `virtualTime`, kept so that rounding never favours a
        /// domain however finely its run time arrives.
        var virtualRemainder: UInt64 = 0
        var consumed: UInt64 = 0
        var periodStart: UInt64 = 0
        var usedInPeriod: UInt64 = 0
        /// Waiting plus running vCPUs; zero means the domain is asleep and its virtual time is stale.
        var runnableVCPUs = 0
    }

    enum State: Equatable {
        case absent
        case blocked
        case waiting
        case running(pcpu: Int)
    }

    struct VCPU {
        var state = State.absent
        var domain = 0
        var affinity: UInt64 = 0
        var waitingSince: UInt64 = 0
        /// The pCPU whose queue holds it while it waits; where it ran last otherwise.
        var queue = 0
    }

    struct PCPU {
        // No Optionals or Bools: a struct whose size is not its stride is read and written a byte at a
        // time through a pointer in the embedded build (the compiler loses its alignment), and this one
        // is on every switch. So the optionals and flags are plain words.
        var chargedUntil: UInt64 = 0
        /// When the running vCPU was picked here.
        var pickedAt: UInt64 = 0
        private var deadlineTime: UInt64 = 0
        private var currentSlot = -1
        private var flags: UInt64 = 0

        private static let hasDeadline: UInt64 = 1, yieldedFlag: UInt64 = 2

        var current: Int? {
            @inline(__always) get { currentSlot < 0 ? nil : currentSlot }
            @inline(__always) set { currentSlot = newValue ?? -1 }
        }

        var deadline: UInt64? {
            @inline(__always) get { flags & PCPU.hasDeadline != 0 ? deadlineTime : nil }
            @inline(__always) set {
                deadlineTime = newValue ?? 0
                setFlag(PCPU.hasDeadline, newValue != nil)
            }
        }

        /// The running vCPU asked to go behind its peers at the next pick.
        var yielded: Bool {
            @inline(__always) get { flags & PCPU.yieldedFlag != 0 }
            @inline(__always) set { setFlag(PCPU.yieldedFlag, newValue) }
        }

        @inline(__always) private mutating func setFlag(_ flag: UInt64, _ on: Bool) {
            flags = on ? flags | flag : flags & ~flag
        }
    }

    /// Weight that makes virtual time advance at the rate of real time (Xen's default weight).
    static let weightUnit: UInt64 = 256
    /// Charges are clamped so `ran * weightUnit` cannot overflow; ~13 days without a pick is not a
    /// schedule anyone will miss the precision of.
    static let longestCharge: UInt64 = 1 << 50

    public private(set) var parameters: SchedulerParameters
    public internal(set) var domainCapacity: Int
    public internal(set) var vcpuCapacity: Int
    public let pcpuCount: Int
    var domains: UnsafeMutablePointer<Domain>
    var vcpus: UnsafeMutablePointer<VCPU>
    let pcpus: UnsafeMutablePointer<PCPU>
    /// Each pCPU's waiting vCPUs, keyed by their domain's virtual time when queued, then waiting time.
    let queues: UnsafeMutablePointer<SlotHeap>
    /// Each domain's accounting lock (see the top of the file).
    var accountingLocks: UnsafeMutablePointer<Atomic<UInt32>>
    /// Per pCPU, nonzero once `wake` has named it (idle) for a kick: naming it again would leave another
    /// idle pCPU unused. Set by other pCPUs without its lock, so a word of its own.
    let kicks: UnsafeMutablePointer<Atomic<UInt32>>

    /// Slots are below `domains` and `vcpus` until `grow` makes room for more; `pcpus` is at most 64
    /// (affinity is a 64-bit mask).
    public init(parameters: SchedulerParameters = .init(), pcpus: Int, domains: Int = 16, vcpus: Int = 64) {
        precondition(pcpus > 0 && pcpus <= 64 && domains > 0 && vcpus > 0)
        precondition(parameters.slice.raw > 0 && parameters.capPeriod.raw > 0)
        self.parameters = parameters
        domainCapacity = domains
        vcpuCapacity = vcpus
        pcpuCount = pcpus
        self.domains = .allocate(capacity: domains)
        self.domains.initialize(repeating: Domain(), count: domains)
        self.vcpus = .allocate(capacity: vcpus)
        self.vcpus.initialize(repeating: VCPU(), count: vcpus)
        self.pcpus = .allocate(capacity: pcpus)
        self.pcpus.initialize(repeating: PCPU(), count: pcpus)
        queues = .allocate(capacity: pcpus)
        for p in 0 ..< pcpus { (queues + p).initialize(to: SlotHeap(capacity: vcpus)) }
        accountingLocks = Scheduler.zeroedWords(domains)
        kicks = Scheduler.zeroedWords(pcpus)
    }

    /// `count` atomic words, each 0 (an Atomic is not copyable, so they are set one by one).
    static func zeroedWords(_ count: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        let words = UnsafeMutablePointer<Atomic<UInt32>>.allocate(capacity: count)
        for i in 0 ..< count { (words + i).initialize(to: Atomic(0)) }
        return words
    }

    deinit {
        _ = (queues).deinitialize(count: pcpuCount)
        queues.deallocate()
        domains.deallocate()
        vcpus.deallocate()
        pcpus.deallocate()
        accountingLocks.deallocate()
        kicks.deallocate()
    }

    // MARK: - Becoming runnable and not

    /// Returns an idle pCPU the vCPU may run on, for the caller to kick out of its idle loop. The
    /// caller holds the lock of the vCPU's queue.
    public mutating func wake(_ v: Int, now: Nanoseconds) -> Int? { wake(v, now: now, locks: EveryQueueHeld()) }

    public mutating func wake<Locks: RunQueueLocking>(_ v: Int, now: Nanoseconds, locks: Locks) -> Int? {
        let now = now.raw
        guard v >= 0 && v < vcpuCapacity, vcpus[v].state == .blocked else { return nil }
        let d = vcpus[v].domain
        lockAccounting(d)
        if domains[d].runnableVCPUs == 0 { catchUp(d) }
        domains[d].runnableVCPUs += 1
        unlockAccounting(d)
        vcpus[v].state = .waiting
        vcpus[v].waitingSince = now
        let home = vcpus[v].queue
        for p in 0 ..< pcpuCount where pcpus[p].current == nil && !isKicked(p) && allowed(v, on: p) {
            kicks[p].store(1, ordering: .relaxed)
            // Waiting in the idle pCPU's own queue, it is that pCPU's pick at once.
            move(v, from: home, to: p, locks: locks)
            return p
        }
        // A vCPU pinned away from its queue while it ran (setAffinity) waits where it may run.
        if allowed(v, on: home) { enqueue(v, on: home) } else { move(v, from: home, to: firstAllowed(v), locks: locks) }
        return nil
    }

    /// Queues waiting vCPU `v` on `p` if `p`'s lock can be had, else (for `p`'s pick to take it) on `home`.
    private mutating func move<Locks: RunQueueLocking>(_ v: Int, from home: Int, to p: Int, locks: Locks) {
        guard p != home else { return enqueue(v, on: p) }
        guard locks.tryLock(p) else { return enqueue(v, on: home) }
        enqueue(v, on: p)
        locks.unlock(p)
    }

    @inline(__always) func isKicked(_ p: Int) -> Bool { kicks[p].load(ordering: .relaxed) != 0 }

    /// Where a vCPU that `wake` left waiting should run at once, as Xen's schedulers tickle a CPU: the
    /// busy pCPU it may use whose vCPU it precedes (its domain is behind in virtual time, as a woken
    /// sleeper usually is), the one furthest ahead if several. The vCPU moves to that pCPU's queue, so
    /// the pick there sees it; the caller kicks the pCPU, whose pick switches at once or, if its vCPU
    /// has not yet run `minimumRun`, when it has.
    /// nil: it waits for a pick as usual (a capped domain out of budget always does).
    public mutating func preemption(for v: Int, now: Nanoseconds) -> Int? {
        preemption(for: v, now: now, locks: EveryQueueHeld())
    }

    public mutating func preemption<Locks: RunQueueLocking>(for v: Int, now: Nanoseconds, locks: Locks) -> Int? {
        let now = now.raw
        guard v >= 0 && v < vcpuCapacity, vcpus[v].state == .waiting,
              !isThrottled(vcpus[v].domain, now: now) else { return nil }
        let behind = domains[vcpus[v].domain].virtualTime
        // Best: a pCPU whose vCPU has had its minimum (it switches at the kick), then the furthest ahead.
        var target: Int?
        var best: (ready: Bool, ahead: UInt64) = (false, 0)
        for p in 0 ..< pcpuCount where allowed(v, on: p) {
            guard pcpus[p].current != nil else { continue }
            let ahead = runningVirtualTime(pcpu: p, now: now)
            guard ahead > behind else { continue }
            let ready = now >= pcpus[p].pickedAt + parameters.minimumRun.raw
            if target == nil || ready && !best.ready || ready == best.ready && ahead > best.ahead {
                target = p
                best = (ready, ahead)
            }
        }
        if let p = target, vcpus[v].queue != p, locks.tryLock(p) {
            dequeue(v)
            enqueue(v, on: p)
            locks.unlock(p)
        }
        return target
    }

    /// The virtual time of the domain running on `p` as it would be if charged now.
    mutating func runningVirtualTime(pcpu p: Int, now: UInt64) -> UInt64 {
        guard let w = pcpus[p].current else { return 0 }
        let d = vcpus[w].domain
        let ran = unchargedRun(pcpu: p, now: now)
        return domains[d].virtualTime + (ran * Scheduler.weightUnit + domains[d].virtualRemainder) / domains[d].weight
    }

    /// A domain's virtual time stood still while it slept. Left alone, it would now hold the CPU until it
    /// caught up with everyone else, so it is brought to within one slice (of its own run time) of the
    /// furthest-behind runnable domain: a sleeper keeps a small edge, which makes it responsive, and
    /// nothing more. With none runnable, of the furthest ahead of those present: one that ran alone
    /// meanwhile would otherwise wait, once it woke, for the sleeper to catch up (the scan is paid only
    /// when no other domain runs or waits). Under `d`'s accounting lock.
    private mutating func catchUp(_ d: Int) {
        let floor = runnableFloor(other: d) ?? presentCeiling(other: d)
        let lead = parameters.slice.raw * Scheduler.weightUnit / domains[d].weight
        let target = floor > lead ? floor - lead : 0
        if domains[d].virtualTime < target {
            domains[d].virtualTime = target
            domains[d].virtualRemainder = 0
        }
    }

    /// The least virtual time of the runnable domains other than `d`: those running somewhere and those
    /// at the head of a queue (a head's domain is the furthest behind of its queue, give or take a
    /// stale key); nil when none is. Read without the other pCPUs' locks.
    func runnableFloor(other d: Int) -> UInt64? {
        var floor: UInt64?
        for p in 0 ..< pcpuCount {
            if let v = pcpus[p].current, vcpus[v].domain != d {
                floor = min(floor ?? .max, domains[vcpus[v].domain].virtualTime)
            }
            if let v = queues[p].slotUnlocked(at: 0), vcpus[v].domain != d {
                floor = min(floor ?? .max, domains[vcpus[v].domain].virtualTime)
            }
        }
        return floor
    }

    /// A running vCPU leaves its pCPU idle with an expired deadline; the caller picks there next.
    public mutating func block(_ v: Int, now: Nanoseconds) {
        let now = now.raw
        guard v >= 0 && v < vcpuCapacity else { return }
        switch vcpus[v].state {
        case .absent, .blocked: return
        case .waiting: dequeue(v)
        case .running(let p):
            charge(pcpu: p, now: now)
            pcpus[p].current = nil
            pcpus[p].yielded = false
            pcpus[p].deadline = now
        }
        vcpus[v].state = .blocked
        lockAccounting(vcpus[v].domain)
        domains[vcpus[v].domain].runnableVCPUs -= 1
        unlockAccounting(vcpus[v].domain)
    }

    /// Xen's ratelimit, set by the toolstack (sysctl scheduler_op); 0 lets a woken vCPU in at once.
    public mutating func setMinimumRun(_ t: Nanoseconds) { parameters.minimumRun = t }

    @inline(__always)
    func precedes(_ a: Int, _ b: Int) -> Bool {
        let va = domains[vcpus[a].domain].virtualTime
        let vb = domains[vcpus[b].domain].virtualTime
        if va != vb { return va < vb }
        if vcpus[a].waitingSince != vcpus[b].waitingSince { return vcpus[a].waitingSince < vcpus[b].waitingSince }
        return a < b
    }

    @inline(__always) func allowed(_ v: Int, on p: Int) -> Bool {
        vcpus[v].affinity & (1 << UInt64(p)) != 0
    }

    @inline(__always)
    /// vCPU `v` may run only where `affinity` allows from now on (some of the machine's pCPUs; Xen's
    /// vcpu-pin). A waiting one moves to a queue it may use; a running one where it may no longer run
    /// must leave: its pCPU is returned for the caller to kick, and the pick there moves it.
    public mutating func setAffinity(_ v: Int, _ affinity: UInt64) -> Int? {
        let machine: UInt64 = pcpuCount == 64 ? ~0 : (1 << UInt64(pcpuCount)) - 1
        precondition(v >= 0 && v < vcpuCapacity && affinity & machine != 0, "no pCPU the vCPU may run on")
        vcpus[v].affinity = affinity
        switch vcpus[v].state {
        case .absent:
            return nil
        case .blocked:
            if !allowed(v, on: vcpus[v].queue) { vcpus[v].queue = firstAllowed(v) }
            return nil
        case .waiting:
            if !allowed(v, on: vcpus[v].queue) {
                dequeue(v)
                enqueue(v, on: firstAllowed(v))
            }
            return nil
        case .running(let p):
            // Its next pick (at once: the deadline has passed, and it yields nothing) queues it where
            // it may run, and it is no candidate here any more. Its queue stays `p`'s while it runs
            // (its state is saved under that lock); one that blocks first moves when woken.
            guard !allowed(v, on: p) else { return nil }
            pcpus[p].deadline = 0
            pcpus[p].yielded = false
            return p
        }
    }

    @inline(__always) func firstAllowed(_ v: Int) -> Int {
        for p in 0 ..< pcpuCount where allowed(v, on: p) { return p }
        return 0
    }
}
