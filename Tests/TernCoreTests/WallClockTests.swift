import Testing
import TernCore

struct WallClockTests {
    @Test func unsetClockReads1970FromBoot() {
        let c = WallClock()
        #expect(c.atBoot == nil)
        #expect(c.wall(at: 2_500_000_000) == (2, 500_000_000))
    }

    @Test func realTimeClockAtBootThenDomainTimes() {
        var c = WallClock()
        // The RTC said 1_700_000_000 s when the hypervisor had been up 3 ms.
        c.set(wall: 1_700_000_000 * 1_000_000_000, at: 3_000_000)
        // A domain started 1.25 s after boot sees the wall time of that moment as its zero.
        #expect(c.wall(at: 1_250_000_000) == (1_700_000_001, 247_000_000))
    }

    @Test func controlDomainSettingIsTakenInItsOwnTimeFrame() {
        var c = WallClock()
        // dom0 started at hypervisor time 10 ms; 2 s into its life it says the time is T.
        c.set(seconds: 1_800_000_000, nanoseconds: 0, systemTime: 2_000_000_000, domainStart: 10_000_000)
        #expect(c.wall(at: 2_010_000_000) == (1_800_000_000, 0))
        #expect(c.wall(at: 10_000_000) == (1_799_999_998, 0))
    }

    @Test func timesBefore1970AreIgnored() {
        var c = WallClock()
        c.set(wall: 5, at: 1_000)
        #expect(c.atBoot == nil)
        c.set(seconds: .max, nanoseconds: 0, systemTime: 0, domainStart: 0)
        #expect(c.atBoot == nil)
        c.set(seconds: UInt64.max / 1_000_000_000 - 1, nanoseconds: .max, systemTime: 0, domainStart: 0)
        #expect(c.atBoot == nil)                             // past 64 bits of nanoseconds
    }

    /// Nanoseconds past a second carry into the seconds, as Xen's do_settime adds them.
    @Test func nanosecondsPastASecondCarry() {
        var c = WallClock()
        c.set(seconds: 1_800_000_000, nanoseconds: 2_500_000_000, systemTime: 0, domainStart: 0)
        #expect(c.wall(at: 0) == (1_800_000_002, 500_000_000))
    }
}
