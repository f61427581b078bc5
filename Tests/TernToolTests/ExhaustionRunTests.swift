import Testing
@testable import TernTool

/// How an exhaustion run's console is read: the canary's round trips by phase, the answers, failures.
@Suite struct ExhaustionRunTests {
    func canary(_ t: Int, rounds: Int, max: Int, avg: Int) -> String {
        "(d1) canary: t=\(t)s rounds=\(t * 98) ticks=\(t * 98) round-max=9000us round-avg=300us tick-max=12000us checks=\(t) anomalies=0 last-rounds=\(rounds) last-max=\(max)us last-avg=\(avg)us"
    }

    var lines: [String] {
        [
            canary(1, rounds: 98, max: 9000, avg: 1500),
            "(d2) exhaust: starting",
            canary(2, rounds: 100, max: 7000, avg: 1000),
            "(d2) exhaust: events: took 1021 ports, then -28 (ENOSPC, as Xen)",
            "(d2) exhaust: events holding",
            canary(3, rounds: 99, max: 500, avg: 200),
            canary(4, rounds: 99, max: 700, avg: 300),
            "(d2) exhaust: events released after 100 more asks",
            canary(5, rounds: 50, max: 99999, avg: 99999),           // between phases: nobody's
            "(d2) exhaust: maptrack holding",
            canary(6, rounds: 98, max: 800, avg: 400),
            "(d2) exhaust: maptrack released after 7 more asks",
            "(d2) exhaust: done",
            "(tern) d2 (exhaust): shutdown: poweroff via SCHEDOP_shutdown",
            canary(7, rounds: 98, max: 8000, avg: 1600),
        ]
    }

    @Test func phasesAddUpTheCanarysRoundTrips() {
        let run = ExhaustionRun(lines: lines, timedOut: false)
        #expect(run.failures == [])
        #expect(run.answers == ["exhaust: events: took 1021 ports, then -28 (ENOSPC, as Xen)"])
        #expect(run.phases.map(\.name) == ["before", "events", "maptrack", "vcpus", "console", "memory", "after"])
        let before = run.phases[0], events = run.phases[1]
        // From "starting" it is taking everything: not the baseline, not yet a phase.
        #expect(before.rounds == 98 && before.longestMicroseconds == 9000 && before.averageMicroseconds == 1500)
        #expect(events.rounds == 198 && events.longestMicroseconds == 700 && events.averageMicroseconds == 250)
        #expect(run.phases[2].rounds == 98 && run.phases[3].rounds == 0 && run.phases[6].rounds == 98)
        #expect(run.markdown.contains("| every event channel | 198 | 250 µs | 700 µs |"))
    }

    @Test func aWrongAnswerAStoppedCanaryOrNoEndFails() {
        var bad = lines
        bad.insert("(d2) exhaust: FAILED console: took 1024 bytes, then 7 where Xen gives 0 (written)", at: 3)
        bad.insert("(tern) d1 (canary): shutdown: crash", at: 4)
        let run = ExhaustionRun(lines: bad, timedOut: false)
        #expect(run.failures == ["(d2) exhaust: FAILED console: took 1024 bytes, then 7 where Xen gives 0 (written)",
                                 "d1 (canary) stopped: crash"])
        #expect(ExhaustionRun(lines: Array(lines.prefix(8)), timedOut: true).failures
                == ["the run did not end in time", "the exhaustion guest did not finish"])
    }
}
