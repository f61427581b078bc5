// The fuzzing domains on the real hypervisor under QEMU: two of them, each vCPU of each fuzzing at
// once on both CPUs, a million operations in all and more, beside the canary; each ends itself once
// on purpose mid-run (a reboot, crash, reset or watchdog while its other vCPU is busy) and Tern
// restarts it with the next seed. Fails on a Tern fault, a hang, an
// ANOMALY from a fuzzer (registers not given back, a control-plane call a domU got through) or from the
// canary (memory changed, an event lost, a timer stopped), or a canary that fell silent.
import Foundation
import Testing
import TernTool

extension BootTests {
    @Test func aMillionHostileOperationsLeaveTernAndTheCanaryWhole() throws {
        // A seed per CI run, printed, so a failure names what reproduces it.
        let seed = UInt64(Date().timeIntervalSince1970) % 1_000_000_007
        let plan = FuzzPlan(seed: seed, ops: 500_000, smp: 2, domains: 2, vcpus: 2, ends: 1)
        print("fuzz: seed \(seed); reproduce with: \(plan.command)")
        let (outcome, result) = try FuzzRun.run(plan, runner: runner, onLine: { _ in })
        let tail = result.lines.filter { !$0.isEmpty }.suffix(40).joined(separator: "\n")
        #expect(outcome.failures == [], "seed \(seed): \(plan.command)\n\(tail)")
        for line in outcome.report { print("fuzz: \(line)") }
        // Every operation of the last generations was done, and those that ended themselves said how
        // many they did; they were restarted (a watchdog may lose the race with the last operation).
        #expect(outcome.finished >= 1)
        #expect(outcome.operations >= UInt64(outcome.finished) * plan.ops, "\(tail)")
        #expect(outcome.operations + UInt64(outcome.killed.count) * plan.ops >= 1_000_000)
        #expect(outcome.endings + outcome.killed.count >= 2 && outcome.restarts >= 1, "\(outcome.report)")
        #expect(outcome.generations.values.contains(1), "\(outcome.generations)")
        // The surface was reached: the implemented hypercalls' sub-ops, every MMIO region.
        #expect(outcome.subopsReached >= 40, "\(outcome.subops)")
        for region in ["gicd", "gicr", "uart", "grant-window", "hole", "past-ram"] {
            #expect(outcome.mmio[region, default: 0] > 1000, "\(region)")
        }
        // The peers met: grants mapped and copied, ports bound, across the two fuzzing domains.
        for count in ["peer-mapped", "peer-copied", "peer-bound"] {
            #expect(outcome.counts[count, default: 0] > 100, "\(count)")
        }
        #expect(outcome.canaryReports >= 2)
    }

    /// The privileged mode: the control domain fuzzes, its domctls (a quarter of its hypercalls, on two
    /// sacrificial fuzzing domUs, domains it created, missing and reserved IDs) answered. No argument
    /// may fault or hang Tern, and the privileged fuzzer finishes.
    @Test func aPrivilegedFuzzerCannotStopTern() throws {
        let seed = UInt64(Date().timeIntervalSince1970) % 1_000_000_007
        let plan = FuzzPlan(seed: seed, ops: 500_000, smp: 2, domains: 2, vcpus: 2, ends: 1, privileged: true)
        print("fuzz: seed \(seed); reproduce with: \(plan.command)")
        let (outcome, result) = try FuzzRun.run(plan, runner: runner, onLine: { _ in })
        let tail = result.lines.filter { !$0.isEmpty }.suffix(40).joined(separator: "\n")
        #expect(outcome.failures == [], "seed \(seed): \(plan.command)\n\(tail)")
        for line in outcome.report { print("fuzz: \(line)") }
        // Its domctls reached the commands Tern implements (at least ten of them answered).
        #expect(outcome.calls["36", default: 0] > 50_000)
        #expect((outcome.subops["36", default: 0]).nonzeroBitCount >= 10, "\(outcome.subops)")
    }
}
