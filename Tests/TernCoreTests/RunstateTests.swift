import Testing
import TernCore

struct RunstateTests {
    @Test func eachChangeChargesTheStateItLeaves() {
        var r = Runstate(.offline, at: 100)
        r.enter(.runnable, at: 400)      // 300 offline
        r.enter(.running, at: 450)       // 50 runnable
        r.enter(.blocked, at: 1450)      // 1000 running
        r.enter(.runnable, at: 1500)     // 50 blocked
        r.enter(.running, at: 1520)      // 20 runnable
        #expect(r.state == .running && r.entered == 1520)
        #expect(r.words == (0, 1520, 1000, 70, 50, 300))
    }

    @Test func aSnapshotCountsTheCurrentStateUpToNow() {
        var r = Runstate(.offline, at: 0)
        r.enter(.running, at: 100)
        #expect(r.words(at: 350) == (0, 100, 250, 0, 0, 100))
        #expect(r.words == (0, 100, 0, 0, 0, 100))          // the snapshot changed nothing
    }

    @Test func aClockThatLagsCostsNothingAndNeverGoesBack() {
        var r = Runstate(.running, at: 1000)
        r.enter(.runnable, at: 990)      // read on another CPU, a little behind
        #expect(r.entered == 1000 && r.time.0 == 0)
        r.enter(.running, at: 1010)
        #expect(r.time.1 == 10 && r.words.0 == Runstate.State.running.rawValue)
    }
}
