// The seam for the run-queue locks the scheduler does not own: the hypervisor keeps one per pCPU and
// calls the scheduler holding the ones the call touches (see Scheduler.swift). Where a call would move
// a vCPU to a queue whose lock the caller does not hold (a woken vCPU to an idle pCPU, a preempting
// one to the pCPU it preempts), it asks for that lock with `tryLock` and does without the move if it
// is taken: waiting could deadlock against a CPU that holds that lock and wants the caller's, and the
// pick there finds the vCPU anyway (it looks at the other queues' heads).

public protocol RunQueueLocking {
    /// Takes pCPU `p`'s run-queue lock if it is free (or already the caller's), without waiting.
    func tryLock(_ p: Int) -> Bool
    /// Lets go of what `tryLock` took.
    func unlock(_ p: Int)
}

/// For a vCPU whose state is still on a CPU (it has just blocked, and is woken before it is switched
/// out): no move at all, so it stays in the queue whose lock that CPU holds until the state is saved.
public struct NoMoves: RunQueueLocking {
    public init() {}
    @inline(__always) public func tryLock(_ p: Int) -> Bool { false }
    @inline(__always) public func unlock(_ p: Int) {}
}

/// A caller that holds every queue's lock, or runs on one thread (host tests, boot): every move is made.
public struct EveryQueueHeld: RunQueueLocking {
    public init() {}
    @inline(__always) public func tryLock(_ p: Int) -> Bool { true }
    @inline(__always) public func unlock(_ p: Int) {}
}
