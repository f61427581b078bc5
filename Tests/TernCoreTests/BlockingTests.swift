import Testing
@testable import TernCore

/// WFI, SCHEDOP_block and poll: whether the vCPU sleeps, and until when, on a 1 GHz counter that
/// started at tick 1000 (so tick 1000 + n is n nanoseconds).
@Suite struct BlockingTests {
    let counter = SystemCounter(frequency: 1_000_000_000, start: CounterTicks(1000))
    let now = CounterTicks(6000)            // 5000 ns
    let off = Blocking.VirtualTimer(control: 0, compare: CounterTicks(0), inFlight: false)

    private func decide(interrupt: Bool = false, timer: Blocking.VirtualTimer? = nil,
                        physical: Nanoseconds = .never, poll: Nanoseconds = .never) -> Blocking.Decision {
        Blocking.decide(interruptWaiting: interrupt, virtualTimer: timer ?? off, physicalTimer: physical,
                        poll: poll, counterNow: now, counter: counter)
    }

    @Test func aWaitingInterruptSendsItBackWhateverItsTimers() {
        #expect(decide(interrupt: true) == .interruptWaiting)
        let due = Blocking.VirtualTimer(control: 1, compare: CounterTicks(10), inFlight: false)
        #expect(decide(interrupt: true, timer: due, poll: 0) == .interruptWaiting)
    }

    @Test func withNothingTimedItSleepsForEver() {
        #expect(decide() == .sleep(wakeAt: .never))
    }

    @Test func aVirtualTimerThatHasFiredSendsItBack() {
        #expect(decide(timer: .init(control: 1, compare: now, inFlight: false)) == .timerDue)
        #expect(decide(timer: .init(control: 1, compare: CounterTicks(5), inFlight: false)) == .timerDue)
    }

    @Test func aFutureVirtualTimerWakesItAtItsTime() {
        #expect(decide(timer: .init(control: 1, compare: CounterTicks(9000), inFlight: false)) == .sleep(wakeAt: 8000))
    }

    /// Masked, disabled, or already handed to the guest: the virtual timer wakes nobody.
    @Test func aTimerThatCannotInterruptIsIgnored() {
        for control: UInt64 in [0, 2, 3] {
            #expect(decide(timer: .init(control: control, compare: CounterTicks(5), inFlight: false)) == .sleep(wakeAt: .never))
        }
        #expect(decide(timer: .init(control: 1, compare: CounterTicks(5), inFlight: true)) == .sleep(wakeAt: .never))
        // ISTATUS (bit 2) as read back does not matter.
        #expect(decide(timer: .init(control: 5, compare: CounterTicks(5), inFlight: false)) == .timerDue)
    }

    @Test func theEarliestOfItsTimersAndPollTimeoutWakesIt() {
        let timer = Blocking.VirtualTimer(control: 1, compare: CounterTicks(21_000), inFlight: false)   // 20000 ns
        #expect(decide(timer: timer, physical: 30_000, poll: 40_000) == .sleep(wakeAt: 20_000))
        #expect(decide(timer: timer, physical: 15_000, poll: 40_000) == .sleep(wakeAt: 15_000))
        #expect(decide(timer: timer, physical: 15_000, poll: 9_000) == .sleep(wakeAt: 9_000))
        // A poll timeout already past still sleeps: the sleepers' pass wakes it at once with 0.
        #expect(decide(poll: 100) == .sleep(wakeAt: 100))
    }
}
