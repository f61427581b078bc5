// Proportional-share scheduling of vCPUs onto physical CPUs, in the spirit of Xen's credit scheduler but
// phrased as virtual time: each domain's run time is scaled by 1/weight, and the pCPU goes to the runnable
// vCPU whose domain is furthest behind. Over any busy interval, domains therefore receive CPU in
// proportion to their weights; a cap additionally limits a domain to a share of each fixed period even
// when the CPU would otherwise idle.
//
// This is policy only. The hypervisor owns the clock (passed in as Nanoseconds; plain UInt64 inside,
// where the arithmetic is), the timers (it arms one for `deadline(pcpu:)` after every `pick`) and the
// lock (every pCPU calls in under it). Domains and vCPUs are slot indices chosen by the caller, below
// the capacities given at creation or by `grow`.
//
// Each pCPU has a run queue, a heap ordered by domain virtual time, so a pick costs O(pCPUs + log n)
// however many domains there are. A queue keeps each vCPU's virtual time as of when it was queued; a
// domain's virtual time only grows, so a stale key is too small, never too large, and the head is
// refreshed until it is current, which makes it the true minimum of its queue. Balancing: a pick
// compares its own head with the other queues' heads (allowed here), so with no affinity the choice is
// the machine-wide best; a pCPU that would otherwise idle searches the other queues for any vCPU it may
// run. A preempted vCPU queues where it ran; a woken one on an idle pCPU it may use (which the caller
// kicks), else where it last ran.

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

        private static let hasDeadline: UInt64 = 1, yieldedFlag: UInt64 = 2, kickedFlag: UInt64 = 4

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

        /// `wake` already named this idle pCPU; naming it again would leave another idle pCPU unused.
        var kicked: Bool {
            @inline(__always) get { flags & PCPU.kickedFlag != 0 }
            @inline(__always) set { setFlag(PCPU.kickedFlag, newValue) }
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
    /// Room for the throttled vCPUs a pick sets aside while it looks past them.
    var setAside: UnsafeMutablePointer<Int>

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
        setAside = .allocate(capacity: vcpus)
    }

    deinit {
        _ = (queues).deinitialize(count: pcpuCount)
        queues.deallocate()
        domains.deallocate()
        vcpus.deallocate()
        pcpus.deallocate()
        setAside.deallocate()
    }

    // MARK: - Becoming runnable and not

    /// Returns an idle pCPU the vCPU may run on, for the caller to kick out of its idle loop.
    public mutating func wake(_ v: Int, now: Nanoseconds) -> Int? {
        let now = now.raw
        guard v >= 0 && v < vcpuCapacity, vcpus[v].state == .blocked else { return nil }
        let d = vcpus[v].domain
        if domains[d].runnableVCPUs == 0 { catchUp(d) }
        domains[d].runnableVCPUs += 1
        vcpus[v].state = .waiting
        vcpus[v].waitingSince = now
        for p in 0 ..< pcpuCount where pcpus[p].current == nil && !pcpus[p].kicked && allowed(v, on: p) {
            pcpus[p].kicked = true
            enqueue(v, on: p)
            return p
        }
        let last = vcpus[v].queue
        enqueue(v, on: allowed(v, on: last) ? last : firstAllowed(v))
        return nil
    }

    /// Where a vCPU that `wake` left waiting should run at once, as Xen's schedulers tickle a CPU: the
    /// busy pCPU it may use whose vCPU it precedes (its domain is behind in virtual time, as a woken
    /// sleeper usually is), the one furthest ahead if several. The vCPU moves to that pCPU's queue, so
    /// the pick there sees it; the caller kicks the pCPU, whose pick switches at once or, if its vCPU
    /// has not yet run `minimumRun`, when it has.
    /// nil: it waits for a pick as usual (a capped domain out of budget always does).
    public mutating func preemption(for v: Int, now: Nanoseconds) -> Int? {
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
        if let p = target, vcpus[v].queue != p {
            dequeue(v)
            enqueue(v, on: p)
        }
        return target
    }

    /// The virtual time of the domain running on `p` as it would be if charged now.
    private func runningVirtualTime(pcpu p: Int, now: UInt64) -> UInt64 {
        guard let w = pcpus[p].current else { return 0 }
        let d = vcpus[w].domain
        let ran = unchargedRun(pcpu: p, now: now)
        return domains[d].virtualTime + (ran * Scheduler.weightUnit + domains[d].virtualRemainder) / domains[d].weight
    }

    /// A domain's virtual time stood still while it slept. Left alone, it would now hold the CPU until it
    /// caught up with everyone else, so it is brought to within one slice (of its own run time) of the
    /// furthest-behind runnable domain: a sleeper keeps a small edge, which makes it responsive, and
    /// nothing more. The runnable domains are those running somewhere and those at the head of a queue
    /// (a head's domain is the furthest behind of its queue).
    private mutating func catchUp(_ d: Int) {
        var floor: UInt64?
        for p in 0 ..< pcpuCount {
            if let v = pcpus[p].current, vcpus[v].domain != d {
                floor = min(floor ?? .max, domains[vcpus[v].domain].virtualTime)
            }
            if let v = head(of: p) {
                floor = min(floor ?? .max, domains[vcpus[v].domain].virtualTime)
            }
        }
        guard let floor else { return }
        let lead = parameters.slice.raw * Scheduler.weightUnit / domains[d].weight
        let target = floor > lead ? floor - lead : 0
        if domains[d].virtualTime < target {
            domains[d].virtualTime = target
            domains[d].virtualRemainder = 0
        }
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
        domains[vcpus[v].domain].runnableVCPUs -= 1
    }

    /// Xen's ratelimit, set by the toolstack (sysctl scheduler_op); 0 lets a woken vCPU in at once.
    public mutating func setMinimumRun(_ t: Nanoseconds) { parameters.minimumRun = t }

    // MARK: - Choosing

    /// The outgoing vCPU is charged and goes back among the waiting, then the best candidate is chosen:
    /// the one whose domain has the least virtual time, then the one that has waited longest, then the
    /// lowest slot (so the result never depends on queue order).
    public mutating func pick(pcpu p: Int, now: Nanoseconds) -> Int? {
        let now = now.raw
        pcpus[p].kicked = false
        let previous = pcpus[p].current
        // Xen's ratelimit: a pick before its deadline (a kick: someone woke) leaves a vCPU that has
        // run less than `minimumRun` where it is, and comes back when it has.
        if let v = previous, !pcpus[p].yielded, let due = pcpus[p].deadline, due > now,
           now < pcpus[p].pickedAt + parameters.minimumRun.raw {
            pcpus[p].deadline = min(due, pcpus[p].pickedAt + parameters.minimumRun.raw)
            return v
        }
        var yielder: Int?
        if let v = pcpus[p].current {
            charge(pcpu: p, now: now)
            pcpus[p].current = nil
            vcpus[v].state = .waiting
            vcpus[v].waitingSince = now
            // A yielder is queued again once the choice is made: it runs again only when nobody else can.
            // Its queue is this pCPU's, unless setAffinity has just moved it away.
            if pcpus[p].yielded { yielder = v } else { enqueue(v, on: vcpus[v].queue) }
        }
        pcpus[p].yielded = false

        var throttledHere = false
        var best = bestOfOwnQueue(p, now: now, throttled: &throttledHere)
        for q in 0 ..< pcpuCount where q != p {
            guard let v = head(of: q), allowed(v, on: p) else { continue }
            if isThrottled(vcpus[v].domain, now: now) {
                throttledHere = true
            } else if best.map({ precedes(v, $0) }) ?? true {
                best = v
            }
        }
        if best == nil { best = bestOfOtherQueues(for: p, now: now, throttled: &throttledHere) }
        // A yielder pinned away from here meanwhile (setAffinity moved its queue) does not stay.
        if best == nil, let v = yielder, vcpus[v].queue == p {
            if isThrottled(vcpus[v].domain, now: now) { throttledHere = true } else { best = v }
        }
        if let v = yielder, v != best { enqueue(v, on: vcpus[v].queue) }

        guard let chosen = best else {
            // A throttled domain becomes eligible again at the next period, and nothing else will make
            // this pCPU look again.
            pcpus[p].deadline = throttledHere ? periodStart(now) + parameters.capPeriod.raw : nil
            return nil
        }
        if chosen != yielder { dequeue(chosen) }
        vcpus[chosen].state = .running(pcpu: p)
        vcpus[chosen].queue = p
        if chosen != previous { pcpus[p].pickedAt = now }
        pcpus[p].current = chosen
        pcpus[p].chargedUntil = now
        pcpus[p].deadline = deadline(for: chosen, now: now)
        return chosen
    }

    /// The head of `p`'s own queue, looking past (and keeping) vCPUs of throttled domains.
    private mutating func bestOfOwnQueue(_ p: Int, now: UInt64, throttled: inout Bool) -> Int? {
        var best: Int?
        var kept = 0
        while let v = head(of: p) {
            guard isThrottled(vcpus[v].domain, now: now) else {
                best = v
                break
            }
            throttled = true
            queues[p].remove(v)
            setAside[kept] = v
            kept += 1
        }
        for i in 0 ..< kept { enqueue(setAside[i], on: p) }
        return best
    }

    /// With nothing for `p` at the heads, any vCPU waiting elsewhere that may run on `p`: the slow path
    /// of a pCPU that would otherwise idle.
    private mutating func bestOfOtherQueues(for p: Int, now: UInt64, throttled: inout Bool) -> Int? {
        var best: Int?
        for q in 0 ..< pcpuCount where q != p {
            for i in 0 ..< queues[q].count {
                let v = queues[q].entry(at: i).slot
                guard allowed(v, on: p) else { continue }
                if isThrottled(vcpus[v].domain, now: now) {
                    throttled = true
                } else if best.map({ precedes(v, $0) }) ?? true {
                    best = v
                }
            }
        }
        return best
    }

    /// The pCPU did the hypervisor's own work from `start` to `end` (scrubbing a dead domain's memory):
    /// its vCPU is charged up to `start` and not for that time.
    public mutating func hypervisorWork(pcpu p: Int, from start: Nanoseconds, to end: Nanoseconds) {
        guard pcpus[p].current != nil else { return }
        charge(pcpu: p, now: start.raw)
        pcpus[p].chargedUntil = max(pcpus[p].chargedUntil, end.raw)
    }

    /// The caller picks on this pCPU next; the yielder is charged for what it used and steps aside once.
    public mutating func yield(pcpu p: Int, now: Nanoseconds) {
        let now = now.raw
        guard pcpus[p].current != nil else { return }
        charge(pcpu: p, now: now)
        pcpus[p].yielded = true
    }

    @inline(__always)
    private func precedes(_ a: Int, _ b: Int) -> Bool {
        let va = domains[vcpus[a].domain].virtualTime
        let vb = domains[vcpus[b].domain].virtualTime
        if va != vb { return va < vb }
        if vcpus[a].waitingSince != vcpus[b].waitingSince { return vcpus[a].waitingSince < vcpus[b].waitingSince }
        return a < b
    }

    @inline(__always) private func allowed(_ v: Int, on p: Int) -> Bool {
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
            // it may run, and it is no candidate here any more.
            guard !allowed(v, on: p) else { return nil }
            vcpus[v].queue = firstAllowed(v)
            pcpus[p].deadline = 0
            pcpus[p].yielded = false
            return p
        }
    }

    func firstAllowed(_ v: Int) -> Int {
        for p in 0 ..< pcpuCount where allowed(v, on: p) { return p }
        return 0
    }
}
