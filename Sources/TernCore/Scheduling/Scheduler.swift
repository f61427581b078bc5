// Proportional-share scheduling of vCPUs onto physical CPUs, in the spirit of Xen's credit scheduler but
// phrased as virtual time: each domain's run time is scaled by 1/weight, and the pCPU goes to the runnable
// vCPU whose domain is furthest behind. Over any busy interval, domains therefore receive CPU in
// proportion to their weights; a cap additionally limits a domain to a share of each fixed period even
// when the CPU would otherwise idle.
//
// This is policy only. The hypervisor owns the clock (passed in as nanoseconds), the timers (it arms one
// for `deadline(pcpu:)` after every `pick`) and the lock (both pCPUs call in under it). Domains and vCPUs
// are small slot indices chosen by the caller, so every lookup is an array index. `pick` scans the vCPUs
// waiting for a CPU, which is linear in a handful of entries; nothing per trap is worse than that.

public struct SchedulerParameters: Sendable {
    /// How long a vCPU runs before its pCPU reconsiders; also the most credit a sleeper may bank.
    public var slice: UInt64 = 10_000_000
    /// The window over which caps are enforced.
    public var capPeriod: UInt64 = 30_000_000

    public init(slice: UInt64 = 10_000_000, capPeriod: UInt64 = 30_000_000) {
        self.slice = slice
        self.capPeriod = capPeriod
    }
}

public struct Scheduler {
    private struct Domain {
        var present = false
        var weight: UInt64 = 1
        var cap: UInt64 = 0
        /// Run time times `weightUnit / weight`: the quantity fairness equalises.
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

    private enum State: Equatable {
        case absent
        case blocked
        case waiting
        case running(pcpu: Int)
    }

    private struct VCPU {
        var state = State.absent
        var domain = 0
        var affinity: UInt64 = 0
        var waitingSince: UInt64 = 0
        /// Position in `waiting`, so leaving it is O(1).
        var queueIndex = 0
    }

    private struct PCPU {
        var current: Int?
        var chargedUntil: UInt64 = 0
        var deadline: UInt64?
        /// The running vCPU asked to go behind its peers at the next pick.
        var yielded = false
        /// `wake` already named this idle pCPU; naming it again would leave another idle pCPU unused.
        var kicked = false
    }

    /// Weight that makes virtual time advance at the rate of real time (Xen's default weight).
    private static let weightUnit: UInt64 = 256
    /// Charges are clamped so `ran * weightUnit` cannot overflow; ~13 days without a pick is not a
    /// schedule anyone will miss the precision of.
    private static let longestCharge: UInt64 = 1 << 50

    private let parameters: SchedulerParameters
    private var domains: [Domain] = []
    private var vcpus: [VCPU] = []
    private var pcpus: [PCPU]
    /// vCPUs that are runnable but not running anywhere, in no particular order.
    private var waiting: [Int] = []

    public init(parameters: SchedulerParameters = .init(), pcpus: Int) {
        precondition(pcpus > 0 && pcpus <= 64 && parameters.slice > 0 && parameters.capPeriod > 0)
        self.parameters = parameters
        self.pcpus = Array(repeating: PCPU(), count: pcpus)
    }

    // MARK: - Domains and vCPUs

    /// `cap` is in percent of one pCPU (above 100 makes sense for a domain with several vCPUs); 0 means
    /// uncapped. A zero weight is treated as the smallest weight rather than as "never".
    public mutating func addDomain(_ d: Int, weight: UInt32, cap: UInt32) {
        while domains.count <= d { domains.append(Domain()) }
        if domains[d].present { removeDomain(d) }
        domains[d] = Domain(present: true, weight: UInt64(max(weight, 1)), cap: UInt64(cap))
    }

    /// Leaves any pCPU that was running one of its vCPUs idle with an expired deadline, so the caller
    /// picks again there.
    public mutating func removeDomain(_ d: Int) {
        guard d < domains.count, domains[d].present else { return }
        for v in vcpus.indices where vcpus[v].state != .absent && vcpus[v].domain == d {
            removeVCPU(v)
        }
        domains[d] = Domain()
    }

    /// The vCPU starts blocked: it has no context to run until the caller wakes it.
    public mutating func addVCPU(_ v: Int, domain: Int, affinity: UInt64, now: UInt64) {
        precondition(domain < domains.count && domains[domain].present)
        while vcpus.count <= v { vcpus.append(VCPU()) }
        if vcpus[v].state != .absent { removeVCPU(v) }
        vcpus[v] = VCPU(state: .blocked, domain: domain, affinity: affinity, waitingSince: now)
    }

    private mutating func removeVCPU(_ v: Int) {
        switch vcpus[v].state {
        case .absent: return
        case .blocked: break
        case .waiting:
            dequeue(v)
            domains[vcpus[v].domain].runnableVCPUs -= 1
        case .running(let p):
            pcpus[p].current = nil
            pcpus[p].yielded = false
            pcpus[p].deadline = 0
            domains[vcpus[v].domain].runnableVCPUs -= 1
        }
        vcpus[v] = VCPU()
    }

    // MARK: - Becoming runnable and not

    /// Returns an idle pCPU the vCPU may run on, for the caller to kick out of its idle loop.
    public mutating func wake(_ v: Int, now: UInt64) -> Int? {
        guard vcpus[v].state == .blocked else { return nil }
        let d = vcpus[v].domain
        if domains[d].runnableVCPUs == 0 { catchUp(d) }
        domains[d].runnableVCPUs += 1
        vcpus[v].state = .waiting
        vcpus[v].waitingSince = now
        enqueue(v)
        for p in pcpus.indices where pcpus[p].current == nil && !pcpus[p].kicked && allowed(v, on: p) {
            pcpus[p].kicked = true
            return p
        }
        return nil
    }

    /// A domain's virtual time stood still while it slept. Left alone, it would now hold the CPU until it
    /// caught up with everyone else, so it is brought to within one slice (of its own run time) of the
    /// furthest-behind runnable domain: a sleeper keeps a small edge, which makes it responsive, and
    /// nothing more.
    private mutating func catchUp(_ d: Int) {
        var floor: UInt64?
        for e in domains.indices where e != d && domains[e].present && domains[e].runnableVCPUs > 0 {
            floor = min(floor ?? .max, domains[e].virtualTime)
        }
        guard let floor else { return }
        let lead = parameters.slice * Scheduler.weightUnit / domains[d].weight
        let target = floor > lead ? floor - lead : 0
        if domains[d].virtualTime < target {
            domains[d].virtualTime = target
            domains[d].virtualRemainder = 0
        }
    }

    /// A running vCPU leaves its pCPU idle with an expired deadline; the caller picks there next.
    public mutating func block(_ v: Int, now: UInt64) {
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

    // MARK: - Choosing

    /// The outgoing vCPU is charged and goes back among the waiting, then the best candidate is chosen:
    /// the one whose domain has the least virtual time, then the one that has waited longest, then the
    /// lowest slot (so the result never depends on queue order).
    public mutating func pick(pcpu p: Int, now: UInt64) -> Int? {
        pcpus[p].kicked = false
        var yielder: Int?
        if let v = pcpus[p].current {
            charge(pcpu: p, now: now)
            pcpus[p].current = nil
            vcpus[v].state = .waiting
            vcpus[v].waitingSince = now
            enqueue(v)
            if pcpus[p].yielded { yielder = v }
        }
        pcpus[p].yielded = false

        var best: Int?
        var throttledHere = false
        for v in waiting where v != yielder && allowed(v, on: p) {
            if isThrottled(vcpus[v].domain, now: now) {
                throttledHere = true
                continue
            }
            if let b = best, !precedes(v, b) { continue }
            best = v
        }
        // A yielder runs again only when nobody else can.
        if best == nil, let v = yielder {
            if isThrottled(vcpus[v].domain, now: now) { throttledHere = true } else { best = v }
        }

        guard let chosen = best else {
            // A throttled domain becomes eligible again at the next period, and nothing else will make
            // this pCPU look again.
            pcpus[p].deadline = throttledHere ? periodStart(now) + parameters.capPeriod : nil
            return nil
        }
        dequeue(chosen)
        vcpus[chosen].state = .running(pcpu: p)
        pcpus[p].current = chosen
        pcpus[p].chargedUntil = now
        pcpus[p].deadline = deadline(for: chosen, on: p, now: now)
        return chosen
    }

    /// The pCPU did the hypervisor's own work from `start` to `end` (scrubbing a dead domain's memory):
    /// its vCPU is charged up to `start` and not for that time.
    public mutating func hypervisorWork(pcpu p: Int, from start: UInt64, to end: UInt64) {
        guard pcpus[p].current != nil else { return }
        charge(pcpu: p, now: start)
        pcpus[p].chargedUntil = max(pcpus[p].chargedUntil, end)
    }

    /// The caller picks on this pCPU next; the yielder is charged for what it used and steps aside once.
    public mutating func yield(pcpu p: Int, now: UInt64) {
        guard pcpus[p].current != nil else { return }
        charge(pcpu: p, now: now)
        pcpus[p].yielded = true
    }

    private func precedes(_ a: Int, _ b: Int) -> Bool {
        let va = domains[vcpus[a].domain].virtualTime
        let vb = domains[vcpus[b].domain].virtualTime
        if va != vb { return va < vb }
        if vcpus[a].waitingSince != vcpus[b].waitingSince { return vcpus[a].waitingSince < vcpus[b].waitingSince }
        return a < b
    }

    private func allowed(_ v: Int, on p: Int) -> Bool {
        vcpus[v].affinity & (1 << UInt64(p)) != 0
    }

    /// The slice end, or earlier if a capped domain would exhaust its budget first. Its other vCPUs may be
    /// spending the same budget on other pCPUs, now or after their own picks, and this deadline cannot be
    /// revised once armed, so the remainder is split between as many vCPUs as could run at once. When that
    /// share gets small the last stretch runs to the end of the budget rather than creeping up on it in
    /// ever shorter picks; the overshoot is bounded by that stretch.
    private func deadline(for v: Int, on p: Int, now: UInt64) -> UInt64 {
        let sliceEnd = now + parameters.slice
        let d = vcpus[v].domain
        guard domains[d].cap != 0 else { return sliceEnd }
        var spent = usedInPeriod(d, now: now)
        for q in pcpus.indices where q != p {
            guard let w = pcpus[q].current, vcpus[w].domain == d else { continue }
            spent += unchargedInPeriod(pcpu: q, now: now)
        }
        let budget = capBudget(d)
        let remaining = budget > spent ? budget - spent : 0
        let concurrency = UInt64(max(1, min(pcpus.count, domains[d].runnableVCPUs)))
        let step = max(remaining / concurrency, min(remaining, parameters.slice / 10), 1)
        return min(sliceEnd, now + step)
    }

    // MARK: - Accounting

    private mutating func charge(pcpu p: Int, now: UInt64) {
        guard let v = pcpus[p].current else { return }
        let ran = min(now > pcpus[p].chargedUntil ? now - pcpus[p].chargedUntil : 0, Scheduler.longestCharge)
        pcpus[p].chargedUntil = now
        let d = vcpus[v].domain
        domains[d].consumed += ran

        let scaled = ran * Scheduler.weightUnit + domains[d].virtualRemainder
        domains[d].virtualTime += scaled / domains[d].weight
        domains[d].virtualRemainder = scaled % domains[d].weight

        // Only the part of the run inside the current period counts against this period's cap.
        let start = periodStart(now)
        if domains[d].periodStart != start {
            domains[d].periodStart = start
            domains[d].usedInPeriod = 0
        }
        domains[d].usedInPeriod += min(ran, now - start)
    }

    private func periodStart(_ now: UInt64) -> UInt64 {
        now - now % parameters.capPeriod
    }

    private func capBudget(_ d: Int) -> UInt64 {
        domains[d].cap * parameters.capPeriod / 100
    }

    private func usedInPeriod(_ d: Int, now: UInt64) -> UInt64 {
        domains[d].periodStart == periodStart(now) ? domains[d].usedInPeriod : 0
    }

    private func unchargedInPeriod(pcpu q: Int, now: UInt64) -> UInt64 {
        let since = max(pcpus[q].chargedUntil, periodStart(now))
        return now > since ? now - since : 0
    }

    /// Counts run time on other pCPUs not yet charged, so two vCPUs of one domain cannot both slip
    /// past its cap.
    private func isThrottled(_ d: Int, now: UInt64) -> Bool {
        guard domains[d].cap != 0 else { return false }
        var spent = usedInPeriod(d, now: now)
        for q in pcpus.indices {
            guard let w = pcpus[q].current, vcpus[w].domain == d else { continue }
            spent += unchargedInPeriod(pcpu: q, now: now)
        }
        return spent >= capBudget(d)
    }

    // MARK: - The waiting set

    private mutating func enqueue(_ v: Int) {
        vcpus[v].queueIndex = waiting.count
        waiting.append(v)
    }

    private mutating func dequeue(_ v: Int) {
        let i = vcpus[v].queueIndex
        let last = waiting.removeLast()
        if last != v {
            waiting[i] = last
            vcpus[last].queueIndex = i
        }
    }

    // MARK: - Queries

    public func running(on pcpu: Int) -> Int? { pcpus[pcpu].current }

    /// When the caller must call `pick` on this pCPU again; nil means only a wake (kick) can change
    /// anything there. A time at or before now means at once.
    public func deadline(pcpu: Int) -> UInt64? { pcpus[pcpu].deadline }

    public func isRunnable(_ v: Int) -> Bool {
        guard v < vcpus.count else { return false }
        switch vcpus[v].state {
        case .waiting, .running: return true
        case .absent, .blocked: return false
        }
    }

    /// Run time charged so far; the current stretch on a pCPU is added at its next pick, block or yield.
    public func consumed(domain: Int) -> UInt64 {
        domain < domains.count ? domains[domain].consumed : 0
    }
}
