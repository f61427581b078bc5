// Spin locks that own what they guard: the state sits inside the lock and is reached only through
// `withLock`, so a field's lock is its type, not a comment. They are fair ticket locks, so a domain
// that hammers its own locks (or a peer's, by sending to it) cannot starve another CPU that waits.
//
// The run-queue locks and the global leaves stay test-and-set (bm_lock): a ticket lock hands over to
// one particular waiter, and where Tern's CPUs are threads of a busier host (4 QEMU CPUs on 2 host
// cores) that waiter is often not running, so every CPU waits for it. Measured: with a ticket
// scheduler lock the 64-domain test's ping-pong (`--smp 4`) ran past its 20 s mark.
//
// The lock order, outermost first (a CPU holding one may take only those after it):
//   1. the run-queue locks, one per CPU (Hypervisor.swift), taken in CPU order. CPU p's guards its
//      run queue and record in the scheduler, its sleepers, and the scheduling state of every vCPU
//      whose queue is p's (`lockHome`: blocked, wake-up and poll state, runstate, runningOn), which
//      includes the vCPU running on p. A pick holds its own and at most one other (its partner, taken
//      in order or tried; see Scheduling.swift); a wake holds the vCPU's; a move between queues holds
//      both. Holding every one of them is "the scheduler lock" (`lockScheduler`): it guards the domain
//      table, the vCPU slots, domains' lives, pauses and watchdogs, affinity, the scheduler's tables
//      and parameters, reclaiming, and everything the toolstack reads about the schedule. The domain
//      table may be read under any one run-queue lock (`withDomainTable` takes this CPU's). Inside
//      the scheduler, a domain's accounting has a lock of its own, innermost, taken by no one else;
//   2. a domain's `events` (two domains' at once only in slot order, see EventChannelOp.swift);
//   3. a domain's `grants` (the granter's alone, then the mapper's alone: never both);
//   4. a domain's `physMap` (its stage 2 after boot, and the frames the hypervisor lent it);
//   5. a domain's vGIC (`withVGIC`: its distributor and its vCPUs' redistributors, kept beside the
//      vCPUs because the trap path reaches them from there), `uart`, `console` and `reports`; the
//      frame allocator, the wall clock, console input;
//   6. the console output (`withConsole`), which a domain's `console` takes to print its line.
// A domain's lifetime is no lock: whoever works on another domain's memory holds a reference to it
// (DomainReferences, taken while the domain table is looked at under a run-queue lock, let go
// anywhere), and its memory is released only once nobody holds it.
import BareMetalSupport

struct SpinLocked<State> {
    private var ticket: UInt32 = 0
    private var state: State

    init(_ state: State) { self.state = state }

    /// Runs `body` on the state with the lock held. The lock must live where every CPU finds it: a
    /// stored property of a class or a global, never a copy.
    @inline(__always) mutating func withLock<R>(_ body: (inout State) -> R) -> R {
        withUnsafeMutablePointer(to: &ticket) { lock in
            bm_ticket_lock(lock)
            defer { bm_ticket_unlock(lock) }
            return body(&state)
        }
    }
}
