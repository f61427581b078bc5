// The scheduler's choice on one pCPU (see Scheduler.swift): the pick, the partner queue it looks at
// besides its own (the balancing rule), and the charges a pick, a yield or the hypervisor's own work
// make.

import Synchronization

extension Scheduler {
    /// For a caller that holds every queue's lock (host tests): `pick` with the `partner` it would lock.
    public mutating func pick(pcpu p: Int, now: Nanoseconds) -> Int? {
        pick(pcpu: p, partner: partner(for: p, now: now), now: now)
    }

    /// Whether a pick now would keep the vCPU running on `p` (Xen's ratelimit: a pick before the
    /// deadline, that is a kick because someone woke, leaves one that has run less than `minimumRun`).
    @inline(__always) private func keepsCurrent(_ p: Int, now: UInt64) -> Bool {
        guard pcpus[p].current != nil, !pcpus[p].yielded, let due = pcpus[p].deadline else { return false }
        return due > now && now < pcpus[p].pickedAt + parameters.minimumRun.raw
    }

    /// The other pCPU whose queue a pick on `p` should look at, for the caller to lock before `pick`
    /// (the balancing rule at the top of the file); nil when `p`'s own queue and vCPU are at least as
    /// good as any other queue's head. Read without the other queues' locks, so it is a hint: the pick
    /// checks again under them. Under `p`'s lock.
    public mutating func partner(for p: Int, now: Nanoseconds) -> Int? {
        let now = now.raw
        guard pcpuCount > 1 else { return nil }
        if let v = pcpus[p].current {
            // Pinned away from here while it ran: it is queued on a pCPU it may use, whose lock it needs.
            if !allowed(v, on: p) { return firstAllowed(v) }
            if keepsCurrent(p, now: now) { return nil }
        }
        var partner: Int?
        var behind: UInt64 = .max
        for q in 0 ..< pcpuCount where q != p {
            guard let v = queues[q].slotUnlocked(at: 0), allowed(v, on: p),
                  !isThrottled(vcpus[v].domain, now: now) else { continue }
            let time = domains[vcpus[v].domain].virtualTime
            if time < behind {
                partner = q
                behind = time
            }
        }
        // What this pCPU has: the head of its own queue, and its vCPU unless it steps aside.
        var here: UInt64 = .max
        if let v = queues[p].first?.slot, allowed(v, on: p), !isThrottled(vcpus[v].domain, now: now) {
            here = domains[vcpus[v].domain].virtualTime
        }
        if !pcpus[p].yielded, let v = pcpus[p].current, !isThrottled(vcpus[v].domain, now: now) {
            here = min(here, runningVirtualTime(pcpu: p, now: now))
        }
        if let q = partner { return behind < here ? q : nil }
        guard here == .max else { return nil }
        // Nothing at the heads, nothing here: the slow path of a pCPU that would otherwise idle, any
        // queue holding a vCPU it may run.
        for q in 0 ..< pcpuCount where q != p {
            var i = 0
            while let v = queues[q].slotUnlocked(at: i) {
                if allowed(v, on: p) && !isThrottled(vcpus[v].domain, now: now) { return q }
                i += 1
            }
        }
        return nil
    }

    /// The outgoing vCPU is charged and goes back among the waiting, then the best candidate of `p`'s
    /// queue and `partner`'s is chosen: the one whose domain has the least virtual time, then the one
    /// that has waited longest, then the lowest slot (so the result never depends on queue order).
    /// The caller holds `p`'s lock and `partner`'s, and keeps both until the outgoing vCPU's state is
    /// saved: it may be queued on the partner (pinned away from `p`), and another pCPU could pick it.
    public mutating func pick(pcpu p: Int, partner: Int?, now: Nanoseconds) -> Int? {
        let now = now.raw
        kicks[p].store(0, ordering: .relaxed)
        let previous = pcpus[p].current
        if let v = previous, keepsCurrent(p, now: now) {
            // It comes back when the vCPU has had its minimum.
            pcpus[p].deadline = min(pcpus[p].deadline ?? .max, pcpus[p].pickedAt + parameters.minimumRun.raw)
            return v
        }
        let q = partner == p ? nil : partner
        var yielder: Int?
        if let v = pcpus[p].current {
            charge(pcpu: p, now: now)
            pcpus[p].current = nil
            vcpus[v].state = .waiting
            vcpus[v].waitingSince = now
            // A yielder is queued again once the choice is made: it runs again only when nobody else can.
            if pcpus[p].yielded { yielder = v } else { enqueue(v, on: queueAfterRunning(v, on: p, partner: q)) }
        }
        pcpus[p].yielded = false

        var throttledHere = false
        var best = bestOfOwnQueue(p, now: now, throttled: &throttledHere)
        if let q, let v = head(of: q), allowed(v, on: p) {
            if isThrottled(vcpus[v].domain, now: now) {
                throttledHere = true
            } else if best.map({ precedes(v, $0) }) ?? true {
                best = v
            }
        }
        if best == nil, let q { best = bestOfQueue(q, for: p, now: now, throttled: &throttledHere) }
        // A yielder pinned away from here meanwhile (setAffinity) does not stay.
        if best == nil, let v = yielder, allowed(v, on: p) {
            if isThrottled(vcpus[v].domain, now: now) { throttledHere = true } else { best = v }
        }
        if let v = yielder, v != best { enqueue(v, on: queueAfterRunning(v, on: p, partner: q)) }

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

    /// The head of `p`'s own queue or, if the head's domain is throttled or it is pinned away from `p`
    /// (a wake could not move it, see `wake`), the best of the rest that may run here: a walk over
    /// the queue, in place (pCPUs pick at once, so a pick keeps no scratch space of the scheduler's).
    private mutating func bestOfOwnQueue(_ p: Int, now: UInt64, throttled: inout Bool) -> Int? {
        guard let v = head(of: p) else { return nil }
        if allowed(v, on: p) && !isThrottled(vcpus[v].domain, now: now) { return v }
        return bestOfQueue(p, for: p, now: now, throttled: &throttled)
    }

    /// Any vCPU waiting in `q`'s queue that may run on `p` now, the best of them: the slow path of a
    /// pCPU whose own head may not run, or that would otherwise idle.
    private mutating func bestOfQueue(_ q: Int, for p: Int, now: UInt64, throttled: inout Bool) -> Int? {
        var best: Int?
        for i in 0 ..< queues[q].count {
            let v = queues[q].entry(at: i).slot
            guard allowed(v, on: p) else { continue }
            if isThrottled(vcpus[v].domain, now: now) {
                throttled = true
            } else if best.map({ precedes(v, $0) }) ?? true {
                best = v
            }
        }
        return best
    }

    /// Where a vCPU that ran on `p` waits: here, or, pinned away meanwhile, on the partner the caller
    /// locked for it (`partner(for:)` names its first allowed pCPU).
    @inline(__always) private func queueAfterRunning(_ v: Int, on p: Int, partner: Int?) -> Int {
        allowed(v, on: p) ? p : partner ?? p
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
}
