import Testing
import TernCore

struct PanicWatchTests {
    func observe(_ lines: [String]) -> (events: [PanicWatch.Event?], begun: Bool) {
        var watch = PanicWatch()
        let events = lines.map { watch.observe(line: Array($0.utf8)) }
        return (events, watch.hasBegun)
    }

    @Test func linuxReportIsFollowedFromBannerToEnd() {
        let (events, begun) = observe([
            "[    2.069722] Kernel panic - not syncing: sysrq triggered crash",
            "[    2.070936] CPU: 1 PID: 1 Comm: init Not tainted 6.1.0-56-arm64 #1",
            "[    2.085554] SMP: stopping secondary CPUs",
            "[    2.102384] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
        ])
        #expect(events == [.began, nil, nil, .ended])
        #expect(begun)
    }

    @Test func bannersWithoutStampsOrWithCallerStampsCount() {
        #expect(observe(["Kernel panic - not syncing: VFS: Unable to mount root fs"]).events == [.began])
        #expect(observe(["[    1.000000][    T1] Kernel panic - not syncing: Attempted to kill init!"]).events == [.began])
        #expect(observe(["  ---[ end Kernel panic - not syncing: Fatal exception ]---"]).events == [.ended])
    }

    @Test func otherLinesAndMentionsInsideALineDoNot() {
        let (events, begun) = observe([
            "[    3.000000] ---[ end trace 0000000000000000 ]---",
            "[    3.000001] Internal error: Oops: 96000004 [#1] SMP",
            "grep: Kernel panic - not syncing",
            "# echo Kernel panic - not syncing",
            "[ unterminated stamp Kernel panic - not syncing",
            "",
            "Kernel panic",
        ])
        #expect(events.allSatisfy { $0 == nil })
        #expect(!begun)
    }
}
