import Testing
import TernCore

struct EmulatedTimerTests {
    @Test func linesFollowEnableMaskAndCompare() {
        var t = EmulatedTimer()
        #expect(!t.isAsserted(now: 100))
        t.write(.compare, 200, now: 100)
        t.write(.control, EmulatedTimer.enable, now: 100)
        #expect(!t.isAsserted(now: 199))
        #expect(t.deadline(now: 199) == 200)
        #expect(t.isAsserted(now: 200))
        #expect(t.deadline(now: 200) == nil)
        #expect(t.read(.control, now: 250) == EmulatedTimer.enable | EmulatedTimer.status)
        // Masked: ISTATUS still reads 1, but the line is low and nothing is due.
        t.write(.control, EmulatedTimer.enable | EmulatedTimer.interruptMask, now: 250)
        #expect(!t.isAsserted(now: 250))
        #expect(t.read(.control, now: 250) == 7)
        #expect(t.deadline(now: 100) == nil)
        // Disabled: ISTATUS reads 0.
        t.write(.control, 0, now: 250)
        #expect(t.read(.control, now: 250) == 0)
        #expect(!t.isAsserted(now: 250))
        // A compare value moved into the future lowers the line again.
        t.write(.control, EmulatedTimer.enable, now: 250)
        #expect(t.isAsserted(now: 250))
        t.write(.compare, 1000, now: 250)
        #expect(!t.isAsserted(now: 250))
    }

    @Test func controlKeepsOnlyEnableAndMask() {
        var t = EmulatedTimer()
        t.write(.control, 0xFFFF_FFFF, now: 0)
        #expect(t.control == 3)
    }

    @Test func timerValueIsASigned32BitDistance() {
        var t = EmulatedTimer()
        t.write(.timerValue, 100, now: 1000)
        #expect(t.compare == 1100)
        #expect(t.read(.timerValue, now: 1000) == 100)
        #expect(t.read(.timerValue, now: 1100) == 0)
        // Past the compare value TVAL counts down through zero: -5 as 32 bits.
        #expect(t.read(.timerValue, now: 1105) == 0xFFFF_FFFB)
        // A negative TVAL puts the compare value in the past: the line is high at once when enabled.
        t.write(.timerValue, 0xFFFF_FFF6, now: 1000)
        #expect(t.compare == 990)
        t.write(.control, EmulatedTimer.enable, now: 1000)
        #expect(t.isAsserted(now: 1000))
        // Only the low 32 bits of the written value count.
        t.write(.timerValue, 0x1_0000_0010, now: 0)
        #expect(t.compare == 16)
    }

    @Test func compareAtTheEndOfTimeNeverFires() {
        var t = EmulatedTimer()
        t.write(.compare, .max, now: 0)
        t.write(.control, EmulatedTimer.enable, now: 0)
        #expect(t.deadline(now: 5) == .max)
        #expect(!t.isAsserted(now: .max - 1))
    }
}
