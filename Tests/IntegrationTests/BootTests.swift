// Boots the real hypervisor image on QEMU with our guests and checks what they and the hypervisor
// print. One QEMU at a time (.serialized): the machine has two cores and each QEMU wants both.
import Foundation
import Testing
import TernTool

@Suite(.serialized)
struct BootTests {
    let runner = TernRunner()

    func example(_ name: String) -> URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("examples/\(name).cfg")
    }

    func run(_ configs: [String], smp: Int = 2, timeout: TimeInterval = 120) throws -> RunResult {
        try runner.run(configs: configs.map(example), smp: smp, timeout: timeout)
    }

    func lines(_ r: RunResult, _ prefix: String) -> [String] {
        r.lines.filter { $0.hasPrefix(prefix) }
    }

    @Test func demoSystemPowersOffCleanly() throws {
        let r = try run(["dom0", "hello", "hello-psci"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        #expect(r.shutdowns == [0: "poweroff", 1: "poweroff", 2: "poweroff"])
        for d in 0 ... 2 {
            #expect(lines(r, "(d\(d)) hello:").contains { $0.contains("done, powering off") })
            #expect(lines(r, "(d\(d)) hello:").contains { $0.contains("tick 3 after") })
        }
        #expect(r.lines.contains { $0.contains("hypervisor speaks Xen 4.17-tern") })
    }

    @Test func outOfBoundsGuestIsDestroyedAndOthersFinish() throws {
        let r = try run(["dom0", "oob", "hello-psci"])
        #expect(r.exitedByItself)
        #expect(r.shutdowns[1] == "crash")
        #expect(r.shutdowns[0] == "poweroff")
        #expect(r.shutdowns[2] == "poweroff")
        // 32 MiB of RAM from 0x40000000 ends at 0x42000000; the guest reads one page past it.
        #expect(r.lines.contains { $0.contains("(tern) d1 (oob): stage-2 data abort at guest address 0x42001000 (read)") })
        #expect(!r.lines.contains { $0.contains("survived") })
    }

    @Test func hostileGuestGetsErrorsNotTheHypervisor() throws {
        let r = try run(["dom0", "hostile"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        let summary = try #require(r.lines.first { $0.contains("hostile:") && $0.contains("checks passed") })
        let numbers = summary.split(separator: " ").first { $0.contains("/") }!.split(separator: "/")
        #expect(numbers.count == 2 && numbers[0] == numbers[1] && Int(numbers[0])! >= 40, "\(summary)")
        #expect(!r.lines.contains { $0.contains("FAILED") })
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }

    @Test func weightsShareOneCPUInProportion() throws {
        let r = try run(["spin-256", "spin-512"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        func work(_ d: Int) -> Double? {
            guard let line = lines(r, "(d\(d)) spin: work=").first else { return nil }
            let field = line.split(separator: " ").first { $0.hasPrefix("work=") }!
            return Double(field.dropFirst(5))
        }
        let light = try #require(work(0)), heavy = try #require(work(1))
        let ratio = heavy / light
        #expect(ratio > 1.8 && ratio < 2.2, "weight 512 : 256 did \(heavy) : \(light) = \(ratio)")
    }

    @Test func capLimitsAnOtherwiseIdleMachine() throws {
        // 2 s of spinning at cap 25% with nobody competing: about 500 ms of CPU, as the hypervisor counts it.
        let r = try run(["capped"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        let report = try #require(r.lines.first { $0.hasPrefix("(tern) d0 (capped): ran on") })
        let ms = try #require(Int(report.split(separator: " ").dropLast().last ?? ""))
        #expect(ms >= 300 && ms <= 700, "\(report)")
    }

    @Test func twoVCPUDomainRunsOnBothCPUs() throws {
        let r = try run(["smp"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        #expect(r.lines.contains { $0.contains("(d0) smp: vcpu1 up") })
        #expect(r.lines.contains { $0.contains("vcpu1 is off") })
        #expect(r.lines.contains { $0.contains("(tern) d0 (smp): ran on pcpus 0 1, at most 2 vcpus at once") })
    }

    @Test func blockedDomainLeavesTheCPUIdle() throws {
        let r = try run(["idle"], smp: 1)
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        #expect(r.lines.contains { $0.contains("(d0) idle: 10 waits") && $0.hasSuffix("early wakeups=0") })
        // SCHEDOP_poll with a 200 ms timeout and no ports returns 0 once the timeout has passed.
        let poll = try #require(r.lines.first { $0.hasPrefix("(d0) idle: poll returned 0 after ") })
        let waited = try #require(Int(poll.split(separator: " ").dropLast().last ?? ""))
        #expect(waited >= 200, "\(poll)")
        let pcpu = try #require(r.lines.first { $0.hasPrefix("(tern) pcpu0: idle ") })
        // "(tern) pcpu0: idle I ms of T ms"
        let numbers = pcpu.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] * 2 > numbers[1], "\(pcpu)")
    }

    @Test func rebootWithRestartBuildsTheDomainAgain() throws {
        // The rebooting domain never ends by itself; the timeout ends the run.
        let r = try run(["dom0", "reboot"], timeout: 5)
        #expect(r.timedOut)
        #expect(r.shutdowns[0] == "poweroff")
        #expect(r.lines.contains { $0.hasPrefix("(tern) d1 (reboot): shutdown: reboot") && $0.hasSuffix(" (restarting)") })
        #expect(r.lines.contains { $0.contains("(tern) d1 (reboot): restarted (2)") })
        #expect(lines(r, "(d1) hello: rebooter up").count >= 3)
    }

    @Test func malformedConfigIsRefusedBeforeAnythingStarts() throws {
        #expect {
            _ = try run(["broken"])
        } throws: { error in
            "\(error)".contains("broken.cfg:") && "\(error)".contains("memory")
        }
    }

    /// Xen-style debug keys on the console: CTRL-a three times gives the focus to Tern, 'q' dumps the
    /// vCPUs with their runstate and 'm' the memory, while the domain carries on to its end.
    @Test func debugKeysDumpVCPUsAndMemory() throws {
        let r = try runner.run(configs: [example("spin-256")], timeout: 120, typeWhen: { line in
            if line.hasPrefix("(tern) *** console input goes to d0") { return "\u{1}\u{1}\u{1}" }
            if line.hasPrefix("(tern) *** console input goes to Tern") { return "qm" }
            return nil
        })
        #expect(r.allPoweredOff, "\(r.lines.suffix(20).joined(separator: "\n"))")
        let dump = try #require(r.lines.first { $0.hasPrefix("(tern) d0 (spin-256) vcpu0 online") })
        // The spinner is running on pCPU 0 (its affinity); it has run, and never blocked.
        #expect(dump.contains(" running on pcpu0 "), "\(dump)")
        let times = try #require(dump.components(separatedBy: " ms run/wait/blocked/down ").last?
            .split(separator: " ").first?.split(separator: "/").compactMap { Int($0) })
        #expect(times.count == 4 && times[0] > 0 && times[2] == 0, "\(dump)")
        #expect(r.lines.contains { $0.hasPrefix("(tern) pcpu0 runs d0 (spin-256) vcpu0") })
        let memory = try #require(r.lines.first { $0.hasPrefix("(tern) memory: ") })
        #expect(memory.contains(" KiB in domains") && memory.contains("32768 KiB in domains"), "\(memory)")
    }

    /// The time of day: Tern reads the board's RTC at boot and publishes it in shared_info; the control
    /// domain sets it with XENPF_settime64 and every Xen-aware domain sees the change; a domU may not.
    @Test func wallClockComesFromTheRTCAndTheControlDomain() throws {
        let r = try run(["clock-dom0", "clock"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        func seconds(_ line: String?) -> Double? {
            guard let words = line?.split(separator: " "), let s = words.firstIndex(of: "s"), s > 0 else { return nil }
            return Double(words[s - 1]).map { $0 + (Double(words[s + 1]) ?? 0) / 1e9 }
        }
        let boot = try #require(seconds(r.lines.first { $0.hasPrefix("(d0) clock: wall clock at start ") }))
        #expect(abs(boot - Date().timeIntervalSince1970) < 600, "\(boot)")
        #expect(r.lines.contains("(d0) clock: settime64 with interface version 0x2000000 = -13"))
        #expect(r.lines.contains("(d0) clock: settime64 with mbz 1 = -22"))
        #expect(r.lines.contains("(d0) clock: settime64 = 0"))
        // system_time 0 named the moment dom0's clock read zero: its own wall clock is exactly that.
        #expect(r.lines.contains("(d0) clock: wall clock now 1900000000 s 0 ns"))
        #expect(r.lines.contains("(d1) clock: settime64 = -1"))
        // d1 started within moments of d0, so its zero is within moments of 1900000000.
        let seen = try #require(seconds(r.lines.first { $0.hasPrefix("(d1) clock: wall clock now ") }))
        #expect(seen >= 1_900_000_000 && seen < 1_900_000_002, "\(seen)")
    }
}
