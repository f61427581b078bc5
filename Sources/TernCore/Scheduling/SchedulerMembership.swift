// Which domains and vCPUs the scheduler knows: the hypervisor adds them as it builds domains and
// removes them as it releases them (a vCPU leaves the run queue it waits in).

import Synchronization

extension Scheduler {
    /// `cap` is in percent of one pCPU (above 100 makes sense for a domain with several vCPUs); 0 means
    /// uncapped. A zero weight is treated as the smallest weight rather than as "never".
    public mutating func addDomain(_ d: Int, weight: UInt32, cap: UInt32) {
        precondition(d >= 0 && d < domainCapacity)
        if domains[d].present { removeDomain(d) }
        domains[d] = Domain(present: true, weight: UInt64(max(weight, 1)), cap: UInt64(cap))
        // Level with the others, never ahead of any: at 0 it would hold the CPUs until it caught up
        // (both fuzzing domains restarting at once starved the canary for seconds). Level with the
        // furthest behind of those running, or, with none running, with the furthest ahead of those
        // present: a sleeper's time follows the busy ones' (catchUp), so that is where they were.
        domains[d].virtualTime = runnableFloor(other: d) ?? presentCeiling(other: d)
    }

    /// The greatest virtual time of the domains present other than `d` (0 with none).
    func presentCeiling(other d: Int) -> UInt64 {
        var ceiling: UInt64 = 0
        for e in 0 ..< domainCapacity where e != d && domains[e].present {
            ceiling = max(ceiling, domains[e].virtualTime)
        }
        return ceiling
    }

    /// A new weight and cap for a domain already here (`xl sched-credit2`): its virtual time stays,
    /// so it neither gains nor loses what it has had; the new rates count from its next charge.
    public mutating func setParameters(_ d: Int, weight: UInt32, cap: UInt32) {
        guard d >= 0 && d < domainCapacity, domains[d].present else { return }
        domains[d].weight = UInt64(max(weight, 1))
        domains[d].cap = UInt64(cap)
    }

    /// Leaves any pCPU that was running one of its vCPUs idle with an expired deadline, so the caller
    /// picks again there.
    public mutating func removeDomain(_ d: Int) {
        guard d >= 0 && d < domainCapacity, domains[d].present else { return }
        for v in 0 ..< vcpuCapacity where vcpus[v].state != .absent && vcpus[v].domain == d {
            removeVCPU(v)
        }
        domains[d] = Domain()
    }

    /// The largest single allocation `grow` (or `init`) makes for these capacities, in bytes: the
    /// caller's heap must have a block this large.
    public static func largestAllocation(domains: Int, vcpus: Int) -> Int {
        max(domains * MemoryLayout<Domain>.stride,
            vcpus * max(MemoryLayout<VCPU>.stride, MemoryLayout<SlotHeap.Entry>.stride, MemoryLayout<Int>.stride))
    }

    /// Room for domain slots below `domains` and vCPU slots below `vcpus` (smaller values are ignored):
    /// the tables are copied into larger ones, so the caller holds whatever lock it calls in under.
    public mutating func grow(domains newDomains: Int, vcpus newVCPUs: Int) {
        if newDomains > domainCapacity {
            let larger = UnsafeMutablePointer<Domain>.allocate(capacity: newDomains)
            larger.moveInitialize(from: domains, count: domainCapacity)
            (larger + domainCapacity).initialize(repeating: Domain(), count: newDomains - domainCapacity)
            domains.deallocate()
            domains = larger
            accountingLocks.deallocate()
            accountingLocks = Scheduler.zeroedWords(newDomains)
            domainCapacity = newDomains
        }
        guard newVCPUs > vcpuCapacity else { return }
        let larger = UnsafeMutablePointer<VCPU>.allocate(capacity: newVCPUs)
        larger.moveInitialize(from: vcpus, count: vcpuCapacity)
        (larger + vcpuCapacity).initialize(repeating: VCPU(), count: newVCPUs - vcpuCapacity)
        vcpus.deallocate()
        vcpus = larger
        for p in 0 ..< pcpuCount { queues[p].grow(to: newVCPUs) }
        vcpuCapacity = newVCPUs
    }

    /// The vCPU starts blocked: it has no context to run until the caller wakes it.
    public mutating func addVCPU(_ v: Int, domain: Int, affinity: UInt64, now: Nanoseconds) {
        precondition(v >= 0 && v < vcpuCapacity && domain >= 0 && domain < domainCapacity && domains[domain].present)
        let machine: UInt64 = pcpuCount == 64 ? ~0 : (1 << UInt64(pcpuCount)) - 1
        precondition(affinity & machine != 0, "no pCPU the vCPU may run on")
        if vcpus[v].state != .absent { removeVCPU(v) }
        vcpus[v] = VCPU(state: .blocked, domain: domain, affinity: affinity, waitingSince: now.raw)
        vcpus[v].queue = firstAllowed(v)
    }

    mutating func removeVCPU(_ v: Int) {
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
}
