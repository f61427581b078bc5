// The per-pCPU run queues (heaps keyed by domain virtual time, refreshed lazily at the head) and what
// the hypervisor may ask about the schedule.

extension Scheduler {
    mutating func enqueue(_ v: Int, on p: Int) {
        vcpus[v].queue = p
        queues[p].set(v, key: domains[vcpus[v].domain].virtualTime, tie: vcpus[v].waitingSince)
    }

    mutating func dequeue(_ v: Int) {
        queues[vcpus[v].queue].remove(v)
    }

    /// The first of `p`'s queue in today's order: stale keys are brought up to date until the head's
    /// is current.
    mutating func head(of p: Int) -> Int? {
        while let e = queues[p].first {
            let current = domains[vcpus[e.slot].domain].virtualTime
            if current == e.key { return e.slot }
            queues[p].set(e.slot, key: current, tie: e.tie)
        }
        return nil
    }

    // MARK: - Queries

    public func running(on pcpu: Int) -> Int? { pcpus[pcpu].current }

    /// The pCPU a vCPU runs on, waits for, or last ran on (Xen's v->processor), and the ones it may use.
    public func placement(of v: Int) -> (pcpu: Int, affinity: UInt64) {
        guard v >= 0 && v < vcpuCapacity else { return (0, 0) }
        return (vcpus[v].queue, vcpus[v].affinity)
    }

    /// When the caller must call `pick` on this pCPU again; nil means only a wake (kick) can change
    /// anything there. A time at or before now means at once.
    public func deadline(pcpu: Int) -> Nanoseconds? { pcpus[pcpu].deadline.map { Nanoseconds($0) } }

    public func isRunnable(_ v: Int) -> Bool {
        guard v >= 0 && v < vcpuCapacity else { return false }
        switch vcpus[v].state {
        case .waiting, .running: return true
        case .absent, .blocked: return false
        }
    }

    /// Run time charged so far; the current stretch on a pCPU is added at its next pick, block or yield.
    public func consumed(domain: Int) -> Nanoseconds {
        Nanoseconds(domain >= 0 && domain < domainCapacity ? domains[domain].consumed : 0)
    }

    /// vCPUs waiting in `pcpu`'s queue.
    public func waiting(on pcpu: Int) -> Int { queues[pcpu].count }
}
