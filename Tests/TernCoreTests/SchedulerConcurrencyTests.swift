import Foundation
import Synchronization
import Testing
@testable import TernCore

/// Four threads as four pCPUs share one Scheduler the way the hypervisor's CPUs do (Scheduling.swift):
/// each works under its own run-queue lock, locks the partner a pick names (in CPU order, or tried,
/// or after letting go of its own), wakes vCPUs under their queue's lock (found as lockHome finds
/// it), lets the scheduler try other queues' locks for its moves, and makes none for a vCPU woken
/// before it is switched out. No vCPU may ever be picked on two
/// pCPUs at once or where its affinity forbids, and every nanosecond a pCPU had a vCPU must be charged
/// to a domain exactly once (two vCPUs of each domain run at once, on different pCPUs).
@Suite struct SchedulerConcurrencyTests {
    final class Machine: @unchecked Sendable {
        let pcpus = 4, domainCount = 8, vcpuCount = 16
        let scheduler: UnsafeMutablePointer<Scheduler>
        let locks: UnsafeMutablePointer<Atomic<UInt32>>
        /// Per vCPU, the pCPU it is picked on (-1: none), claimed with a compare-and-swap.
        let onPCPU: UnsafeMutablePointer<Atomic<Int>>
        let affinity: [UInt64]
        let clock = Atomic<UInt64>(0)
        let doubleRuns = Atomic<Int>(0)
        let againstAffinity = Atomic<Int>(0)
        let picked = Atomic<Int>(0)
        let steals = Atomic<Int>(0)
        /// Per pCPU, the time it had a vCPU picked (summed by its own thread; read after the join).
        let busy: UnsafeMutablePointer<UInt64>

        init() {
            scheduler = .allocate(capacity: 1)
            scheduler.initialize(to: Scheduler(parameters: SchedulerParameters(slice: .microseconds(50), minimumRun: .microseconds(5)),
                                               pcpus: pcpus, domains: domainCount, vcpus: vcpuCount))
            locks = .allocate(capacity: pcpus)
            for p in 0 ..< pcpus { (locks + p).initialize(to: Atomic(0)) }
            onPCPU = .allocate(capacity: vcpuCount)
            for v in 0 ..< vcpuCount { (onPCPU + v).initialize(to: Atomic(-1)) }
            // Most may run anywhere; some are pinned to one or two pCPUs.
            affinity = (0 ..< vcpuCount).map { (v: Int) -> UInt64 in
                if v % 5 == 0 { return 1 << UInt64(v % 4) }
                return v % 7 == 0 ? 0b0110 : 0b1111
            }
            busy = .allocate(capacity: pcpus)
            busy.initialize(repeating: 0, count: pcpus)
            // Two capped domains, so picks often look past a throttled head.
            for d in 0 ..< domainCount { scheduler.pointee.addDomain(d, weight: 256, cap: d < 2 ? 30 : 0) }
            for v in 0 ..< vcpuCount {
                scheduler.pointee.addVCPU(v, domain: v / 2, affinity: affinity[v], now: 0)
            }
        }

        func now() -> Nanoseconds { Nanoseconds(clock.add(100, ordering: .relaxed).newValue) }

        func lock(_ p: Int) {
            while !locks[p].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
                while locks[p].load(ordering: .relaxed) != 0 { sched_yield() }
            }
        }
        func tryLock(_ p: Int) -> Bool { locks[p].compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged }
        func unlock(_ p: Int) { locks[p].store(0, ordering: .releasing) }

        /// As the hypervisor's lockHome: the queue read under a lock of our own, then re-checked under its.
        func lockHome(_ v: Int, from here: Int) -> Int {
            lock(here)
            while true {
                let q = scheduler.pointee.placement(of: v).pcpu
                if q == here { return q }
                unlock(here)
                lock(q)
                if scheduler.pointee.placement(of: v).pcpu == q { return q }
                unlock(q)
                lock(here)
            }
        }
    }

    struct TryLocks: RunQueueLocking {
        let machine: Machine
        func tryLock(_ p: Int) -> Bool { machine.tryLock(p) }
        func unlock(_ p: Int) { machine.unlock(p) }
    }

    /// One pCPU's thread: `operations` random blocks, wakes and picks.
    static func run(_ m: Machine, pcpu p: Int, operations: Int, seed: UInt64) {
        var random = SeededRandom(state: seed)
        func next(_ n: Int) -> Int { Int(random.next() % UInt64(n)) }
        var current: Int?                   // the vCPU this pCPU has "switched in"
        var since: UInt64 = 0
        func account(_ t: Nanoseconds) {
            if m.scheduler.pointee.running(on: p) != nil { m.busy[p] += t.raw - since }
            since = t.raw
        }
        func switchTo(_ chosen: Int?) {
            guard chosen != current else { return }
            if let c = current { m.onPCPU[c].store(-1, ordering: .releasing) }
            if let c = chosen {
                m.picked.add(1, ordering: .relaxed)
                if !m.onPCPU[c].compareExchange(expected: -1, desired: p, ordering: .acquiringAndReleasing).exchanged {
                    m.doubleRuns.add(1, ordering: .relaxed)
                }
                if m.affinity[c] & (1 << UInt64(p)) == 0 { m.againstAffinity.add(1, ordering: .relaxed) }
            }
            current = chosen
        }
        for _ in 0 ..< operations {
            if next(4) == 0 {
                // Wake someone (most wakes find it runnable already).
                let v = next(m.vcpuCount)
                let home = m.lockHome(v, from: p)
                let t = m.now()
                if home == p { account(t) }
                _ = m.scheduler.pointee.wake(v, now: t, locks: TryLocks(machine: m))
                m.unlock(home)
                continue
            }
            m.lock(p)
            var t = m.now()
            account(t)
            if let v = current, next(3) == 0 {
                m.scheduler.pointee.block(v, now: t)
                // Its own timer may wake it before it is switched out (the hypervisor's wakeSleepers):
                // its state is still here, so it must not move (NoMoves) where another pCPU could pick it.
                if next(2) == 0 { _ = m.scheduler.pointee.wake(v, now: t, locks: NoMoves()) }
            }
            let partner = m.scheduler.pointee.partner(for: p, now: t)
            if let q = partner {
                if q > p {
                    m.lock(q)
                } else if !m.tryLock(q) {
                    // Letting go of our own lock: the vCPU here leaves first.
                    switchTo(nil)
                    m.unlock(p)
                    m.lock(q)
                    m.lock(p)
                    m.steals.add(1, ordering: .relaxed)
                    t = m.now()
                    account(t)
                }
            }
            let chosen = m.scheduler.pointee.pick(pcpu: p, partner: partner, now: t)
            switchTo(chosen)
            if let q = partner { m.unlock(q) }
            m.unlock(p)
        }
        // The end: whatever runs here is charged up to now and blocked.
        m.lock(p)
        let t = m.now()
        account(t)
        if let v = m.scheduler.pointee.running(on: p) { m.scheduler.pointee.block(v, now: t) }
        switchTo(nil)
        m.unlock(p)
    }

    @Test func fourPCPUsShareTheSchedulerUnderRunQueueLocks() {
        let m = Machine()
        for v in 0 ..< m.vcpuCount { _ = m.scheduler.pointee.wake(v, now: 0) }
        let done = DispatchGroup()
        for p in 0 ..< m.pcpus {
            done.enter()
            let thread = Thread {
                Self.run(m, pcpu: p, operations: 200_000, seed: 0x5EED + UInt64(p))
                done.leave()
            }
            thread.start()
        }
        done.wait()
        #expect(m.doubleRuns.load(ordering: .relaxed) == 0, "a vCPU was picked on two pCPUs at once")
        #expect(m.againstAffinity.load(ordering: .relaxed) == 0)
        #expect(m.picked.load(ordering: .relaxed) > 10_000)
        // Nothing runs now: every runnable vCPU waits in exactly one queue, and nothing else does.
        let runnable = (0 ..< m.vcpuCount).filter { m.scheduler.pointee.isRunnable($0) }.count
        let queued = (0 ..< m.pcpus).map { m.scheduler.pointee.waiting(on: $0) }.reduce(0, +)
        #expect(runnable == queued && runnable > 0, "\(runnable) runnable vCPUs, \(queued) queued")
        let consumed = (0 ..< m.domainCount).map { m.scheduler.pointee.consumed(domain: $0).raw }.reduce(0, +)
        let busy = (0 ..< m.pcpus).map { m.busy[$0] }.reduce(0, +)
        #expect(consumed == busy, "charged \(consumed) ns for \(busy) ns of running")
        #expect(busy > 0)
    }
}
