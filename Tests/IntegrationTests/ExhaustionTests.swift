// Resource exhaustion on the real hypervisor: a domU takes every event channel, every grant-mapping
// handle, every vCPU it has, floods the console and asks for memory it may not have; each is answered
// as Xen answers it, and the canary beside it, doing round trips with dom0, notices nothing wrong.
// How long its round trips took is `tern bench`'s to report, not this test's to assert.
import Testing
import TernTool

extension BootTests {
    @Test func aDomainThatTakesEverythingGetsXensAnswersAndTheOthersKeepTheirs() throws {
        let (run, result) = try ExhaustionRun.run(runner: runner, hold: 3)
        let tail = result.lines.filter { !$0.isEmpty && !$0.hasPrefix("(d2) +") }.suffix(30).joined(separator: "\n")
        #expect(run.failures == [], "\(tail)")
        // events, maptrack (one grant's uses, then the handles), vcpus (PSCI and VCPUOP_up), console, memory.
        #expect(run.answers.count == 7, "\(run.answers)")
        for mode in ExhaustionRun.modes {
            #expect(run.answers.contains { $0.hasPrefix("exhaust: \(mode): took ") }, "\(mode)")
            #expect(run.phases.first { $0.name == mode }.map { $0.rounds > 0 } == true, "the canary's round trips while \(mode)")
        }
        print(run.markdown)
    }
}
