import Foundation
import Testing
@testable import TernTool

/// How `tern fuzz` reads a run's console: what passes, and each way it fails.
@Suite struct FuzzRunTests {
    let plan = FuzzPlan(seed: 42, ops: 1000, smp: 2, domains: 2, vcpus: 2)

    /// A run in which both fuzzers finish and the canary reports twice after them.
    var healthy: [String] {
        [
            "(d1) canary: bound to d0",
            "(d2) fuzz: seed=42 ops=1000 vcpus=2",
            "(d1) canary: t=1s rounds=100 ticks=98 round-max=90us round-avg=40us tick-max=12000us checks=1 anomalies=0",
            "(d2) fuzz: counts hypercalls=600 mmio=180 sysregs=100 psci=60 waits=40 yields=20 aborts=30 undefined=50",
            "(d2) fuzz: mmio gicd=30 gicr=30 uart=30 grant-window=30 hole=30 past-ram=30",
            "(d2) fuzz: hypercall 12 calls=100 subops=0x5",
            "(d2) fuzz: hypercall 64+ calls=7 subops=0x0",
            "(d2) fuzz: done seed=42 ops=1000 subops=2 anomalies=0 ms=100 ops/s=10000",
            "(tern) d2 (fuzz0): shutdown: poweroff",
            "(d3) fuzz: hypercall 12 calls=50 subops=0x3",
            "(d3) fuzz: mmio gicd=1 gicr=2 uart=3 grant-window=4 hole=5 past-ram=6",
            "(d3) fuzz: done seed=1000045 ops=1000 subops=2 anomalies=0 ms=100 ops/s=9000",
            "(tern) d3 (fuzz1): shutdown: poweroff",
            "(d1) canary: t=2s rounds=200 ticks=198 round-max=90us round-avg=40us tick-max=12000us checks=2 anomalies=0",
            "(d1) canary: t=3s rounds=300 ticks=298 round-max=90us round-avg=40us tick-max=12000us checks=3 anomalies=0",
        ]
    }

    @Test func aHealthyRunPassesAndAddsUp() {
        let o = FuzzOutcome(lines: healthy, plan: plan, timedOut: false)
        #expect(o.failures == [])
        #expect(o.operations == 2000 && o.finished == 2 && o.killed.isEmpty)
        #expect(o.calls == ["12": 150, "64+": 7])
        #expect(o.subops["12"] == 0x7 && o.subopsReached == 3)
        #expect(o.mmio["gicd"] == 31 && o.mmio["past-ram"] == 36)
        #expect(o.counts["aborts"] == 30 && o.opsPerSecond == [10000, 9000])
        #expect(o.canaryReports == 3 && o.canaryReportsAfterFuzzing == 2)
    }

    @Test func aFaultAHangAnAnomalyOrASilentCanaryFails() {
        let fault = Array(healthy.prefix(4)) + ["(tern) HYPERVISOR FAULT: data abort (kind 1) on the cpu with affinity 0x0",
                                               "(tern)   esr 0x96000004", "(d1) canary: t=3s rounds=1"]
        let faulted = FuzzOutcome(lines: fault, plan: plan, timedOut: false)
        #expect(faulted.failures.count == 1 && faulted.failures[0].hasPrefix("Tern faulted: (tern) HYPERVISOR FAULT"))
        #expect(faulted.fault.count == 2)

        let hung = FuzzOutcome(lines: Array(healthy.prefix(8)), plan: plan, timedOut: true)
        #expect(hung.failures == ["the run did not end in time: a hang (see the vCPU dump above)"])

        // One anomaly is one failure: the canary's later counts of it add none.
        var lines = healthy
        lines.insert("(d1) canary: ANOMALY its memory changed at 0x40812340", at: 5)
        lines[14] = lines[14].replacingOccurrences(of: "anomalies=0", with: "anomalies=1")
        lines[15] = lines[15].replacingOccurrences(of: "anomalies=0", with: "anomalies=1")
        #expect(FuzzOutcome(lines: lines, plan: plan, timedOut: false).failures == ["(d1) canary: ANOMALY its memory changed at 0x40812340"])

        // One report after the end is not enough: its memory check may have begun before.
        let silent = FuzzOutcome(lines: Array(healthy.dropLast()), plan: plan, timedOut: false)
        #expect(silent.failures == ["the canary said too little after the fuzzing ended"])

        lines = healthy
        lines.insert("(tern) d1 (canary): shutdown: crash", at: 3)
        #expect(FuzzOutcome(lines: lines, plan: plan, timedOut: false).failures == ["the canary stopped: d1 (canary): crash"])
    }

    /// An anomaly whose line the console split (only its count shows), a guest's own failure, and a
    /// run in which every fuzzing domain was killed all fail.
    @Test func countsFailuresOfTheGuestsAndNoSurvivorFail() {
        var lines = healthy
        lines[7] = "(d2) fuzz: done seed=42 ops=1000 subops=2 anomalies=1 ms=100 ops/s=10000"
        lines[13] = "(d1) canary: t=2s rounds=200 ticks=198 round-max=90us round-avg=40us tick-max=12000us checks=2 anomalies=2"
        lines[14] = "(d1) canary: t=3s rounds=300 ticks=298 round-max=90us round-avg=40us tick-max=12000us checks=3 anomalies=2"
        let counted = FuzzOutcome(lines: lines, plan: plan, timedOut: false)
        #expect(counted.failures.count == 2)         // one per domain that reports any
        #expect(counted.failures[0].hasPrefix("(d2) reports 1 anomalies") && counted.failures[1].hasPrefix("(d1) reports 2 anomalies"))

        lines = healthy
        lines.insert("(d3) fuzz: FAILED to start vcpu 1: PSCI -2", at: 2)
        #expect(FuzzOutcome(lines: lines, plan: plan, timedOut: false).failures == ["(d3) fuzz: FAILED to start vcpu 1: PSCI -2"])

        let noSurvivor = [healthy[0], healthy[2], "(tern) d2 (fuzz0): shutdown: crash", "(tern) d3 (fuzz1): shutdown: crash",
                          healthy[13], healthy[14]]
        let o = FuzzOutcome(lines: noSurvivor, plan: plan, timedOut: false)
        #expect(o.killed.count == 2 && o.failures == ["no fuzzing domain finished"])
    }

    /// A fuzzing domain Tern ended is counted; the run goes on and passes.
    @Test func aKilledFuzzerIsCountedNotAFailure() {
        var lines = healthy
        lines.removeSubrange(9 ..< 13)
        lines.insert("(tern) d3 (fuzz1): shutdown: crash", at: 9)
        let o = FuzzOutcome(lines: lines, plan: plan, timedOut: false)
        #expect(o.failures == [])
        #expect(o.killed == ["d3 (fuzz1): crash"] && o.finished == 1 && o.operations == 1000)
    }

    @Test func theStopWatchWaitsForEveryFuzzerThenTheCanary() {
        let watch = FuzzRun.StopWatch(plan)
        #expect(!watch.shouldStop(after: "(d1) canary: t=1s rounds=1"))
        #expect(!watch.shouldStop(after: "(tern) d2 (fuzz0): shutdown: reboot (restarting)"))
        #expect(!watch.shouldStop(after: "(tern) d3 (fuzz1): shutdown: poweroff"))
        #expect(!watch.shouldStop(after: "(d1) canary: t=2s rounds=2"))
        #expect(!watch.shouldStop(after: "(d1) canary: t=3s rounds=3"))          // d2 is back, fuzzing
        #expect(!watch.shouldStop(after: "(tern) d1 (canary): shutdown: crash"))      // not a fuzzer
        #expect(!watch.shouldStop(after: "(tern) d2 (fuzz0): shutdown: crash"))
        #expect(!watch.shouldStop(after: "(d1) canary: t=4s rounds=4"))          // its check may predate the end
        #expect(watch.shouldStop(after: "(d1) canary: t=5s rounds=5"))
    }

    @Test func configsSeedEachFuzzerSoOneReplaysAlone() {
        let configs = plan.configs
        #expect(configs.map(\.name) == ["partner", "canary", "fuzz0", "fuzz1"])
        #expect(configs[2].text.contains("extra = \"seed=42 ops=1000 vcpus=2 ends=0 peer=3\""))
        #expect(configs[3].text.contains("ends=0 peer=2\""))
        #expect(configs[2].text.contains("on_crash = \"restart\"") && configs[2].text.contains("on_watchdog = \"restart\""))
        #expect(!configs[1].text.contains("restart"))
        #expect(configs[3].text.contains("seed=\(42 + 1_000_003) "))
        #expect(FuzzPlan(seed: plan.seed(ofDomain: 1), ops: 1000, smp: 1, domains: 1, vcpus: 1).configs[2].text
                .contains("seed=\(plan.seed(ofDomain: 1)) ops=1000 vcpus=1 ends=0\""))
        #expect(plan.command == "tern fuzz --seed 42 --ops 1000 --smp 2 --domains 2 --vcpus 2 --ends 0")
        #expect(FuzzOutcome().replays(of: plan) == ["tern fuzz --seed 42 --ops 1000 --smp 1 --domains 1 --vcpus 2 --ends 0 --peer 3",
                                                    "tern fuzz --seed 1000045 --ops 1000 --smp 1 --domains 1 --vcpus 2 --ends 0 --peer 3"])
        // A replay keeps a peer (never itself: alone it is domain 2), so its stream draws the same numbers (the peer's calls are refused).
        let alone = FuzzPlan(seed: 1000045, ops: 1000, smp: 1, domains: 1, vcpus: 2, peer: 2)
        #expect(alone.configs[2].text.contains("ends=0 peer=2\"") && alone.command.hasSuffix(" --ends 0 --peer 2"))
        #expect(!FuzzPlan(seed: 1, ops: 1000, smp: 1, domains: 1).configs[2].text.contains("peer="))
    }

    /// A fuzzer that ends itself on purpose is restarted and its operations counted; its replay is its
    /// latest generation's seed with the ends still to come. One Tern ends unannounced is killed, and
    /// restarted too; one Tern cannot rebuild fails the run.
    @Test func restartsAreCountedAndReplayTheLatestGeneration() {
        let plan = FuzzPlan(seed: 42, ops: 1000, smp: 2, domains: 2, vcpus: 2, ends: 2)
        var lines = healthy
        lines.insert(contentsOf: [
            "(d3) fuzz: seed=1000045 ops=1000 vcpus=2 generation=0 ends=2",
            "(d3) fuzz: generation 0 ends itself by SCHEDOP_shutdown(crash) after ops=400",
            "(tern) d3 (fuzz1): shutdown: crash (restarting)",
            "(tern) d3 (fuzz1): restarted (1)",
            "(d3) fuzz: seed=101000052 ops=1000 vcpus=2 generation=1 ends=1",
            "(tern) d3 (fuzz1): shutdown: crash (restarting)",
            "(d3) fuzz: seed=201000059 ops=1000 vcpus=2 generation=2 ends=0",
        ], at: 1)
        let o = FuzzOutcome(lines: lines, plan: plan, timedOut: false)
        #expect(o.failures == [])
        #expect(o.endings == 1 && o.restarts == 2 && o.killed == ["d3 (fuzz1): crash"])
        #expect(o.operations == 2400 && o.finished == 2)
        #expect(o.replays(of: plan) == ["tern fuzz --seed 42 --ops 1000 --smp 1 --domains 1 --vcpus 2 --ends 2 --peer 3",
                                        "tern fuzz --seed 201000059 --ops 1000 --smp 1 --domains 1 --vcpus 2 --ends 0 --peer 3"])
        #expect(plan.replay(domain: 1, generation: 1) == "tern fuzz --seed 101000052 --ops 1000 --smp 1 --domains 1 --vcpus 2 --ends 1 --peer 3")
        #expect(plan.timeout > FuzzPlan(seed: 42, ops: 1000, smp: 2, domains: 2, vcpus: 2).timeout)

        // A watchdog announced that the last operation beat: it powers off, and is neither killed nor restarted.
        lines = healthy
        lines.insert("(d2) fuzz: generation 0 ends itself by a watchdog left to run out after ops=999", at: 7)
        let raced = FuzzOutcome(lines: lines, plan: plan, timedOut: false)
        #expect(raced.failures == [] && raced.endings == 0 && raced.restarts == 0 && raced.killed.isEmpty)
        #expect(raced.operations == 2000)            // its done line counts the 999 it announced

        lines = healthy
        lines.insert(contentsOf: ["(tern) d3 (fuzz1): shutdown: reboot (restarting)", "(tern) d3 (fuzz1): could not be rebuilt; destroyed"], at: 9)
        #expect(FuzzOutcome(lines: lines, plan: plan, timedOut: false).failures
                == ["Tern could not restart a fuzzing domain: (tern) d3 (fuzz1): could not be rebuilt; destroyed"])
        // It is gone: the run stops without waiting for a line that will not come.
        let watch = FuzzRun.StopWatch(plan)
        for line in ["(tern) d2 (fuzz0): shutdown: poweroff", "(tern) d3 (fuzz1): shutdown: reboot (restarting)",
                     "(tern) d3 (fuzz1): could not be rebuilt; destroyed", "(d1) canary: t=9s rounds=1"] {
            #expect(!watch.shouldStop(after: line))
        }
        #expect(watch.shouldStop(after: "(d1) canary: t=10s rounds=2"))
    }

    /// The privileged mode: the control domain fuzzes beside sacrificial fuzzing domUs and no canary.
    /// What the sacrificial domains report is kept, not judged; the privileged fuzzer's own anomaly,
    /// or its not finishing, fails the run; the run stops when it is done.
    @Test func thePrivilegedModeJudgesOnlyTheControlDomain() {
        let plan = FuzzPlan(seed: 42, ops: 1000, smp: 2, domains: 2, vcpus: 2, ends: 1, privileged: true)
        #expect(plan.configs.map(\.name) == ["privileged", "fuzz0", "fuzz1"])
        #expect(plan.configs[0].text.contains("extra = \"seed=42 ops=1000 vcpus=2 privileged=1 victims=2\""))
        #expect(plan.configs[1].text.contains("seed=\(42 + 1_000_003) ops=1000 vcpus=2 ends=1 peer=2\""))
        #expect(plan.configs[2].text.contains("peer=1\""))
        #expect(plan.command.hasSuffix(" --privileged") && FuzzOutcome().replays(of: plan) == [plan.command])
        let lines = [
            "(d0) fuzz: seed=42 ops=1000 vcpus=2 generation=0 ends=0 peer=-1 privileged=1 victims=2",
            "(d1) fuzz: ANOMALY on vcpu 0: hypercall 1 command 3 changed 0x1 of x19-x29",
            "(tern) d2 (fuzz1): shutdown: crash (restarting)",
            "(tern) d1 (fuzz0): destroyed",
            "(tern) d5 (): shutdown: crash",
            "(d0) fuzz: done seed=42 ops=1000 subops=2 anomalies=0 ms=100 ops/s=10000",
            "(tern) d0 (fuzz-privileged): shutdown: poweroff",
        ]
        let o = FuzzOutcome(lines: lines, plan: plan, timedOut: false)
        #expect(o.failures == [])
        #expect(o.sacrificialReports.count == 1 && o.killed == ["d2 (fuzz1): crash"] && o.restarts == 1)
        #expect(o.report.contains { $0.hasPrefix("the sacrificial domains reported") })

        var bad = lines
        bad.insert("(d0) fuzz: ANOMALY on vcpu 1: hypercall 2 command 0 changed 0x4 of x19-x29", at: 1)
        #expect(FuzzOutcome(lines: bad, plan: plan, timedOut: false).failures
                == ["(d0) fuzz: ANOMALY on vcpu 1: hypercall 2 command 0 changed 0x4 of x19-x29"])
        bad = lines.filter { !$0.hasPrefix("(d0) fuzz: done") }
        bad.insert("(d1) fuzz: done seed=1 ops=1000 subops=2 anomalies=0 ms=100 ops/s=10000", at: 1)
        #expect(FuzzOutcome(lines: bad, plan: plan, timedOut: false).failures == ["the privileged fuzzer did not finish"])

        let watch = FuzzRun.StopWatch(plan)
        #expect(!watch.shouldStop(after: "(tern) d1 (fuzz0): shutdown: poweroff"))
        #expect(!watch.shouldStop(after: "(tern) d0 (fuzz-privileged): shutdown: reboot (restarting)"))
        #expect(watch.shouldStop(after: "(tern) d0 (fuzz-privileged): shutdown: poweroff"))
    }
}
