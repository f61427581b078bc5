import Testing
@testable import TernCore

/// Ticks of the system counter against hypervisor nanoseconds: QEMU's 62.5 MHz, a board's 24 MHz and
/// 1 GHz, and compare values a guest may write anywhere.
@Suite struct SystemCounterTests {
    @Test func ticksBecomeNanosecondsSinceBoot() {
        let qemu = SystemCounter(frequency: 62_500_000, start: CounterTicks(1_000))
        #expect(qemu.time(at: CounterTicks(1_000)) == Nanoseconds(0))
        #expect(qemu.time(at: CounterTicks(1_000 + 62_500_000)) == Nanoseconds(1_000_000_000))
        #expect(qemu.time(at: CounterTicks(1_000 + 1)) == Nanoseconds(16))
        #expect(qemu.duration(625) == Nanoseconds(10_000))
        let board = SystemCounter(frequency: 24_000_000, start: CounterTicks(0))
        #expect(board.time(at: CounterTicks(24_000_000 * 3 + 12_000_000)) == Nanoseconds(3_500_000_000))
    }

    @Test func aRoundTripLosesLessThanATick() {
        for frequency: UInt64 in [24_000_000, 62_500_000, 1_000_000_000] {
            let c = SystemCounter(frequency: frequency, start: CounterTicks(123_456_789))
            for ns: UInt64 in [0, 1, 999_999_999, 1_000_000_000, 86_400 * 1_000_000_000 + 7] {
                let back = c.time(at: c.ticks(at: Nanoseconds(ns)))
                #expect(back <= Nanoseconds(ns))
                #expect(ns - back.raw < 1_000_000_000 / frequency + 1)
            }
        }
    }

    /// A guest may set its timer's compare value to any 64-bit number: that is a time that never
    /// comes, not one that wraps round to the past.
    @Test func aFarCompareValueSaturates() {
        let c = SystemCounter(frequency: 62_500_000, start: CounterTicks(5))
        #expect(c.time(at: CounterTicks(.max)) == .never)
        #expect(c.time(at: CounterTicks(UInt64(1) << 62)) == .never)
        #expect(c.deadline(at: CounterTicks(.max)) == .never)
        // A compare value below the start (one a guest set in the past) is due already, not far off.
        #expect(c.deadline(at: CounterTicks(4)) == Nanoseconds(0))
        #expect(c.deadline(at: CounterTicks(0)) == Nanoseconds(0))
        #expect(c.deadline(at: CounterTicks(5 + 62_500_000)) == Nanoseconds(1_000_000_000))
        #expect(c.ticks(at: .never) == CounterTicks(.max))
        let ghz = SystemCounter(frequency: 1_000_000_000, start: CounterTicks(0))
        #expect(ghz.time(at: CounterTicks(.max - 1)) == Nanoseconds(.max - 1))
    }
}
