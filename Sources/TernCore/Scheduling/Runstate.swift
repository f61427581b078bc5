// Where a vCPU's time went, as Xen accounts it (struct vcpu_runstate_info): running, runnable (it
// could run but another vCPU had the CPU), blocked (it waited for an event) and offline. Linux reads
// runnable + offline as steal time, so these must follow every switch and wake-up, not only boot.

public struct Runstate: Sendable {
    public enum State: UInt64, Sendable { case running = 0, runnable = 1, blocked = 2, offline = 3 }

    public private(set) var state: State
    /// When it entered `state`.
    public private(set) var entered: Nanoseconds
    /// Nanoseconds spent in each state before `entered`, indexed by State.
    public private(set) var time: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init(_ state: State, at t: Nanoseconds) {
        self.state = state
        entered = t
    }

    /// Moves to `next` at `t`; the time since the last change goes to the state it is leaving. A clock
    /// read on another CPU may lag a little: such a change costs no time rather than wrapping.
    public mutating func enter(_ next: State, at t: Nanoseconds) {
        let spent = t > entered ? t.raw - entered.raw : 0
        switch state {
        case .running: time.0 &+= spent
        case .runnable: time.1 &+= spent
        case .blocked: time.2 &+= spent
        case .offline: time.3 &+= spent
        }
        state = next
        entered = max(t, entered)
    }

    /// The six words of vcpu_runstate_info in order: state (its padding zero), state_entry_time, time[4].
    public var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) {
        (state.rawValue, entered.raw, time.0, time.1, time.2, time.3)
    }

    /// The words as VCPUOP_get_runstate_info reports them at `t`: the current state's time counted up
    /// to `t`, state_entry_time unchanged.
    public func words(at t: Nanoseconds) -> (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) {
        var now = self
        now.enter(state, at: t)
        let w = now.words
        return (w.0, entered.raw, w.2, w.3, w.4, w.5)
    }
}
