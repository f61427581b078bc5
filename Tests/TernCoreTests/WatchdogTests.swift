import Testing
import TernCore

struct WatchdogTests {
    @Test func armPokeStopAsXenDoes() {
        var w = Watchdogs()
        #expect(w.command(id: 0, timeout: 2, now: 1_000) == .success(1))
        #expect(w.command(id: 0, timeout: 5, now: 1_000) == .success(2))
        #expect(w.command(id: 0, timeout: 1, now: 1_000) == .failure(.noneFree))
        #expect(w.next == 2_000_001_000)
        // A poke moves the deadline on; stopping frees the slot for the next arm.
        #expect(w.command(id: 1, timeout: 10, now: 1_500_000_000) == .success(0))
        #expect(w.next == 5_000_001_000)
        #expect(w.command(id: 2, timeout: 0, now: 2_000_000_000) == .success(0))
        #expect(w.next == 11_500_000_000)
        #expect(w.command(id: 0, timeout: 1, now: 2_000_000_000) == .success(2))
    }

    @Test func unknownOrStoppedIDsAreInvalid() {
        var w = Watchdogs()
        #expect(w.command(id: 1, timeout: 3, now: 0) == .failure(.invalid))
        #expect(w.command(id: 3, timeout: 3, now: 0) == .failure(.invalid))
        #expect(w.command(id: .max, timeout: 0, now: 0) == .failure(.invalid))
        #expect(w.next == nil && !w.hasFired(at: .never))
    }

    @Test func firesOnlyOnceTheDeadlinePasses() {
        var w = Watchdogs()
        _ = w.command(id: 0, timeout: 1, now: 0)
        #expect(!w.hasFired(at: 999_999_999))
        #expect(w.hasFired(at: 1_000_000_000))
    }
}
