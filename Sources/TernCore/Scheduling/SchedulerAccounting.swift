// The scheduler's accounting: charging a pCPU's run to its vCPU's domain, as virtual time (scaled by
// weight) and, for a capped domain, as time used in the current cap period, with run time on other
// pCPUs not yet charged counted too so that two vCPUs of one domain cannot both slip past its cap.

import Synchronization

extension Scheduler {
    /// A domain's accounting lock: its vCPUs on other pCPUs charge it too. Innermost, held for a few
    /// instructions; a test-and-set lock, as the run queues' are.
    @inline(__always) func lockAccounting(_ d: Int) {
        guard pcpuCount > 1 else { return }     // one pCPU: nobody to keep out
        while !accountingLocks[d].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            while accountingLocks[d].load(ordering: .relaxed) != 0 {}
        }
    }

    @inline(__always) func unlockAccounting(_ d: Int) {
        guard pcpuCount > 1 else { return }
        accountingLocks[d].store(0, ordering: .releasing)
    }

    mutating func charge(pcpu p: Int, now: UInt64) {
        guard let v = pcpus[p].current else { return }
        let ran = unchargedRun(pcpu: p, now: now)
        pcpus[p].chargedUntil = now
        guard ran != 0 else { return }
        let d = vcpus[v].domain
        lockAccounting(d)
        defer { unlockAccounting(d) }
        let domain = domains + d
        domain.pointee.consumed += ran

        let scaled = ran * Scheduler.weightUnit + domain.pointee.virtualRemainder
        let weight = domain.pointee.weight
        domain.pointee.virtualTime += scaled / weight
        domain.pointee.virtualRemainder = scaled % weight

        // Only the part of the run inside the current period counts against this period's cap; an
        // uncapped domain has no period to keep.
        guard domain.pointee.cap != 0 else { return }
        let start = periodStart(now)
        if domain.pointee.periodStart != start {
            domain.pointee.periodStart = start
            domain.pointee.usedInPeriod = 0
        }
        domain.pointee.usedInPeriod += min(ran, now - start)
    }

    /// What the vCPU on `p` has run since it was last charged (clamped so scaling it cannot overflow).
    @inline(__always) func unchargedRun(pcpu p: Int, now: UInt64) -> UInt64 {
        min(now > pcpus[p].chargedUntil ? now - pcpus[p].chargedUntil : 0, Scheduler.longestCharge)
    }

    @inline(__always)
    func periodStart(_ now: UInt64) -> UInt64 {
        now - now % parameters.capPeriod.raw
    }

    @inline(__always)
    func capBudget(_ d: Int) -> UInt64 {
        domains[d].cap * parameters.capPeriod.raw / 100
    }

    @inline(__always)
    func usedInPeriod(_ d: Int, now: UInt64) -> UInt64 {
        domains[d].periodStart == periodStart(now) ? domains[d].usedInPeriod : 0
    }

    @inline(__always)
    func unchargedInPeriod(pcpu q: Int, now: UInt64) -> UInt64 {
        let since = max(pcpus[q].chargedUntil, periodStart(now))
        return now > since ? now - since : 0
    }

    /// Counts run time on other pCPUs not yet charged, so two vCPUs of one domain cannot both slip
    /// past its cap.
    @inline(__always) mutating func isThrottled(_ d: Int, now: UInt64) -> Bool {
        guard domains[d].cap != 0 else { return false }
        return hasSpentItsBudget(d, now: now)
    }

    /// The capped domain's part of `isThrottled`, out of line: the check is made in many places.
    /// Mutating only so that callers pass the scheduler by reference (a non-mutating call from a
    /// mutating method copies the whole struct to the stack first).
    @inline(never) mutating func hasSpentItsBudget(_ d: Int, now: UInt64) -> Bool {
        spentInPeriod(d, now: now) >= capBudget(d)
    }

    @inline(__always)
    func spentInPeriod(_ d: Int, now: UInt64) -> UInt64 {
        var spent = usedInPeriod(d, now: now)
        for q in 0 ..< pcpuCount {
            guard let w = pcpus[q].current, vcpus[w].domain == d else { continue }
            spent += unchargedInPeriod(pcpu: q, now: now)
        }
        return spent
    }

    /// The slice end, or earlier if a capped domain would exhaust its budget first. Its other vCPUs may be
    /// spending the same budget on other pCPUs, now or after their own picks, and this deadline cannot be
    /// revised once armed, so the remainder is split between as many vCPUs as could run at once. When that
    /// share gets small the last stretch runs to the end of the budget rather than creeping up on it in
    /// ever shorter picks; the overshoot is bounded by that stretch.
    @inline(__always)
    func deadline(for v: Int, now: UInt64) -> UInt64 {
        let sliceEnd = now + parameters.slice.raw
        let d = vcpus[v].domain
        guard domains[d].cap != 0 else { return sliceEnd }
        // The pCPU it was just picked for is charged up to now, so it adds nothing here.
        let spent = spentInPeriod(d, now: now)
        let budget = capBudget(d)
        let remaining = budget > spent ? budget - spent : 0
        let concurrency = UInt64(max(1, min(pcpuCount, domains[d].runnableVCPUs)))
        let step = max(remaining / concurrency, min(remaining, parameters.slice.raw / 10), 1)
        return min(sliceEnd, now + step)
    }
}
