// Whether a vCPU that asks to wait (WFI, SCHEDOP_block, SCHEDOP_poll) leaves its CPU, and until when.
// It must not sleep through what it waits for: an interrupt already waiting, or a virtual timer that
// has already fired, sends it straight back; otherwise the earliest of its timers and its poll's
// timeout wakes it, if nothing else does first.

public enum Blocking {
    /// The virtual timer as the vCPU left it.
    public struct VirtualTimer: Equatable, Sendable {
        /// CNTV_CTL_EL0.
        public var control: UInt64
        /// CNTV_CVAL_EL0.
        public var compare: CounterTicks
        /// Its interrupt is already in the guest's hands (pending or active in the virtual GIC): the
        /// timer cannot wake the vCPU again until the guest is done with it.
        public var inFlight: Bool

        public init(control: UInt64, compare: CounterTicks, inFlight: Bool) {
            self.control = control
            self.compare = compare
            self.inFlight = inFlight
        }

        /// Enabled and not masked (CNTV_CTL's ENABLE set, IMASK clear).
        var canWake: Bool { control & 3 == 1 && !inFlight }
    }

    public enum Decision: Equatable, Sendable {
        /// It carries on: an interrupt waits for it (the caller puts it in its list registers).
        case interruptWaiting
        /// It carries on: its virtual timer has fired, and the timer's own interrupt takes it back.
        case timerDue
        /// It leaves the CPU until an interrupt or event, or `wakeAt` (`.never`: nothing timed).
        case sleep(wakeAt: Nanoseconds)
    }

    /// `physicalTimer`: when its emulated physical timer fires (`.never`: not armed); `poll`: its poll's
    /// timeout (`.never`: none, or not polling); `counterNow`: the system counter as read now.
    public static func decide(interruptWaiting: Bool, virtualTimer: VirtualTimer, physicalTimer: Nanoseconds,
                              poll: Nanoseconds, counterNow: CounterTicks, counter: SystemCounter) -> Decision {
        if interruptWaiting { return .interruptWaiting }
        var wakeAt = min(poll, physicalTimer)
        if virtualTimer.canWake {
            if virtualTimer.compare <= counterNow { return .timerDue }
            wakeAt = min(wakeAt, counter.deadline(at: virtualTimer.compare))
        }
        return .sleep(wakeAt: wakeAt)
    }
}
