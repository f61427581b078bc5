import Testing
@testable import TernCore

/// Run-queue locks of which some are taken by other pCPUs: `tryLock` fails for those.
private struct SomeQueuesTaken: RunQueueLocking {
    let taken: Set<Int>
    func tryLock(_ p: Int) -> Bool { !taken.contains(p) }
    func unlock(_ p: Int) {}
}

private func oneDomainPerVCPU(pcpus: Int, affinities: [UInt64], caps: [UInt32] = []) -> Scheduler {
    var s = Scheduler(parameters: SchedulerParameters(slice: .milliseconds(10), capPeriod: .milliseconds(30)), pcpus: pcpus)
    for (v, affinity) in affinities.enumerated() {
        s.addDomain(v, weight: 256, cap: v < caps.count ? caps[v] : 0)
        s.addVCPU(v, domain: v, affinity: affinity, now: 0)
    }
    return s
}

/// The balancing rule with per-pCPU run-queue locks: a move that needs a lock the caller cannot have
/// is left undone, and the pick on the pCPU it was for finds the vCPU in the other queue (its partner).
@Suite struct SchedulerRunQueueLockTests {
    /// A vCPU woken for an idle pCPU whose queue lock is taken waits in its own queue; the idle pCPU,
    /// kicked, names that queue as its partner and takes the vCPU from it.
    @Test func aWakeThatCannotMoveIsTakenByTheKickedPCPU() {
        var s = oneDomainPerVCPU(pcpus: 2, affinities: [0b11, 0b11])
        #expect(s.wake(0, now: 0) == 0)
        #expect(s.pick(pcpu: 0, now: 0) == 0)
        // vCPU 1 last ran on (is queued for) pCPU 0; pCPU 1 idles, but its lock is busy.
        #expect(s.wake(1, now: .milliseconds(1), locks: SomeQueuesTaken(taken: [1])) == 1)
        #expect(s.waiting(on: 0) == 1 && s.waiting(on: 1) == 0)
        #expect(s.placement(of: 1).pcpu == 0)
        // pCPU 1 has nothing of its own: its partner is pCPU 0, whose head it takes.
        #expect(s.partner(for: 1, now: .milliseconds(1)) == 0)
        #expect(s.pick(pcpu: 1, partner: 0, now: .milliseconds(1)) == 1)
        #expect(s.waiting(on: 0) == 0 && s.placement(of: 1).pcpu == 1)
        // Its queue is pCPU 1's now: woken again for idle pCPU 1, it needs no other lock.
        s.block(1, now: .milliseconds(2))
        #expect(s.wake(1, now: .milliseconds(3), locks: SomeQueuesTaken(taken: [0, 1])) == 1)
        #expect(s.waiting(on: 1) == 1)
    }

    /// A woken vCPU that should preempt a pCPU whose lock is taken stays queued where it was; the
    /// preempted pCPU's pick (the caller kicks it) takes it from there.
    @Test func aPreemptionThatCannotMoveIsTakenByThePreemptedPCPU() {
        var s = oneDomainPerVCPU(pcpus: 2, affinities: [0b11, 0b10, 0b01])
        #expect(s.wake(1, now: 0) == 1)
        #expect(s.pick(pcpu: 1, now: 0) == 1)
        #expect(s.wake(2, now: .milliseconds(8)) == 0)
        #expect(s.pick(pcpu: 0, now: .milliseconds(8)) == 2)
        // vCPU 0 has never run: it waits on pCPU 0 and should take pCPU 1, whose lock is busy.
        #expect(s.wake(0, now: .milliseconds(9)) == nil)
        #expect(s.preemption(for: 0, now: .milliseconds(9), locks: SomeQueuesTaken(taken: [1])) == 1)
        #expect(s.waiting(on: 0) == 1 && s.waiting(on: 1) == 0)
        #expect(s.partner(for: 1, now: .milliseconds(9)) == 0)
        #expect(s.pick(pcpu: 1, partner: 0, now: .milliseconds(9)) == 0)
        #expect(s.waiting(on: 0) == 0 && s.waiting(on: 1) == 1)      // vCPU 1 waits where it ran
    }

    /// A pCPU whose own vCPU or queue head is at least as far behind as every other queue's head
    /// needs no second lock; one whose best is further ahead than another head names that queue.
    @Test func aPickLocksAPartnerOnlyWhenAnotherQueueHasBetter() {
        var s = oneDomainPerVCPU(pcpus: 2, affinities: [0b01, 0b11, 0b10])
        #expect(s.wake(0, now: 0) == 0)
        #expect(s.pick(pcpu: 0, now: 0) == 0)
        #expect(s.wake(2, now: 0) == 1)
        #expect(s.pick(pcpu: 1, now: 0) == 2)
        // vCPU 1 (never ran) waits on pCPU 0. At 20 ms both running domains are ahead of it.
        #expect(s.wake(1, now: .milliseconds(1)) == nil)
        #expect(s.waiting(on: 0) == 1)
        #expect(s.partner(for: 0, now: .milliseconds(20)) == nil)     // its own queue has it
        #expect(s.partner(for: 1, now: .milliseconds(20)) == 0)
        #expect(s.pick(pcpu: 1, partner: 0, now: .milliseconds(20)) == 1)
        // Now pCPU 1's queue has vCPU 2, which may not run on pCPU 0: no partner for pCPU 0.
        #expect(s.partner(for: 0, now: .milliseconds(30)) == nil)
    }

    /// A running vCPU pinned away from its pCPU keeps that pCPU's queue until it leaves it: the pick
    /// there names its new pCPU as partner and queues it there (the caller holds both locks).
    @Test func aVCPUPinnedAwayWhileRunningMovesAtThePickWithItsNewQueueLocked() {
        var s = oneDomainPerVCPU(pcpus: 3, affinities: [0b111])
        #expect(s.wake(0, now: 0) == 0)
        #expect(s.pick(pcpu: 0, now: 0) == 0)
        #expect(s.setAffinity(0, 0b100) == 0)
        #expect(s.placement(of: 0).pcpu == 0)                          // its state is still pCPU 0's
        #expect(s.partner(for: 0, now: .milliseconds(1)) == 2)
        #expect(s.pick(pcpu: 0, partner: 2, now: .milliseconds(1)) == nil)
        #expect(s.waiting(on: 2) == 1 && s.placement(of: 0).pcpu == 2)
        #expect(s.pick(pcpu: 2, now: .milliseconds(1)) == 0)
    }

    /// One pinned away while it ran that blocks before its pick, and is woken while its new pCPU's
    /// lock is taken, waits in its old queue: that pCPU never runs it, and its new pCPU's pick finds it.
    @Test func aPinnedAwayVCPUThatCouldNotMoveNeverRunsWhereItMayNot() {
        var s = oneDomainPerVCPU(pcpus: 2, affinities: [0b11, 0b10])
        #expect(s.wake(0, now: 0) == 0)
        #expect(s.pick(pcpu: 0, now: 0) == 0)
        #expect(s.wake(1, now: 0) == 1)
        #expect(s.pick(pcpu: 1, now: 0) == 1)
        #expect(s.setAffinity(0, 0b10) == 0)
        s.block(0, now: .milliseconds(1))                              // before pCPU 0 picks again
        #expect(s.pick(pcpu: 0, now: .milliseconds(1)) == nil)
        #expect(s.wake(0, now: .milliseconds(2), locks: SomeQueuesTaken(taken: [1])) == nil)
        #expect(s.waiting(on: 0) == 1 && s.placement(of: 0).pcpu == 0)
        #expect(s.partner(for: 0, now: .milliseconds(2)) == nil)
        #expect(s.pick(pcpu: 0, now: .milliseconds(2)) == nil)          // never here
        #expect(s.waiting(on: 0) == 1)
        s.block(1, now: .milliseconds(3))
        #expect(s.partner(for: 1, now: .milliseconds(3)) == 0)
        #expect(s.pick(pcpu: 1, partner: 0, now: .milliseconds(3)) == 0)
        #expect(s.waiting(on: 0) == 0)
    }

    /// Charges from several pCPUs to one domain under its accounting lock add up.
    @Test func chargesOfOneDomainFromSeveralPCPUsAddUp() {
        var s = Scheduler(pcpus: 2)
        s.addDomain(0, weight: 256, cap: 0)
        s.addVCPU(0, domain: 0, affinity: 0b11, now: 0)
        s.addVCPU(1, domain: 0, affinity: 0b11, now: 0)
        #expect(s.wake(0, now: 0) == 0)
        #expect(s.wake(1, now: 0) == 1)
        #expect(s.pick(pcpu: 0, now: 0) == 0)
        #expect(s.pick(pcpu: 1, now: 0) == 1)
        s.block(0, now: .milliseconds(3))
        s.block(1, now: .milliseconds(5))
        #expect(s.consumed(domain: 0) == .milliseconds(8))
    }
}
