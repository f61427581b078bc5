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

    /// A guest that reaches for memory with nothing behind it takes a synchronous external abort there,
    /// as on hardware; its own handler reports the address and crashes the domain. Tern says so once.
    @Test func outOfBoundsGuestTakesTheAbortAndOthersFinish() throws {
        let r = try run(["dom0", "oob", "oob-fetch", "hello-psci"])
        #expect(r.exitedByItself)
        #expect(r.shutdowns == [0: "poweroff", 1: "crash", 2: "crash", 3: "poweroff"], "\(r.lines.joined(separator: "\n"))")
        // 32 MiB of RAM from 0x40000000 ends at 0x42000000; the guests read and run one page past it.
        #expect(r.lines.contains { $0.hasPrefix("(tern) d1 (oob): read at guest address 0x42001000 with nothing there") })
        #expect(r.lines.contains { $0.hasPrefix("(d1) guest: data abort (read) at 0x42001000, fault status 0x10") })
        #expect(r.lines.contains { $0.hasPrefix("(tern) d2 (oob-fetch): instruction fetch at guest address 0x42001000 with nothing there") })
        #expect(r.lines.contains { $0.hasPrefix("(d2) guest: instruction abort at 0x42001000, fault status 0x10") })
        #expect(r.lines.contains("(tern) d1 (oob): shutdown: crash via SCHEDOP_shutdown"))
        #expect(!r.lines.contains { $0.contains("survived") })
        #expect(lines(r, "(d3) hello:").contains { $0.contains("done, powering off") })
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
        // 2 s of spinning at cap 25% with nobody competing: about 500 ms of CPU, as the hypervisor counts it
        // (520 ms run after run here). Up to 900: a moment the host stalls QEMU while the guest holds
        // the CPU is charged to the guest (718 ms once in a CI run); uncapped it would be 2000.
        let r = try run(["capped"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        let report = try #require(r.lines.first { $0.hasPrefix("(tern) d0 (capped): ran on") })
        let ms = try #require(Int(report.split(separator: " ").dropLast().last ?? ""))
        #expect(ms >= 300 && ms <= 900, "\(report)")
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
        // "(tern) pcpu0: idle I ms of T ms, waited W us for run-queue locks (N times)"
        let numbers = pcpu.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 3 && numbers[0] * 2 > numbers[1], "\(pcpu)")
        #expect(pcpu.hasSuffix(" times)") && pcpu.contains(" us for run-queue locks ("), "\(pcpu)")
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

    /// Two vCPUs wake each other thousands of times through hypercalls that sleep (block, poll, yield,
    /// CPU_SUSPEND), beside a domain that keeps both CPUs busy, so they keep moving between CPUs: x19-x29
    /// always come back as they went in. SCHEDOP_poll watches its ports: a pending one (even masked) ends
    /// it at once, an event on a masked one wakes it, and with neither it lasts until its timeout.
    @Test func sleepingHypercallsKeepRegistersAndPollWatchesItsPorts() throws {
        let r = try run(["pingpong", "spin-busy"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        /// The number before `word` on the first line that starts with `prefix` and has `word`.
        func number(_ prefix: String, before word: String) -> Int? {
            for line in r.lines where line.hasPrefix(prefix) {
                let words = line.split(separator: " ")
                if let i = words.firstIndex(of: Substring(word)), i > 0 { return Int(words[i - 1]) }
            }
            return nil
        }
        #expect(r.lines.contains("(d0) pingpong: broken registers 0"))
        let turns = try #require(number("(d0) pingpong: ", before: "turns"))
        #expect(turns >= 2000, "\(turns) turns")
        // Every kind of sleep was used, each many times.
        let waits = try #require(r.lines.first { $0.hasPrefix("(d0) pingpong: ") && $0.contains(" waits ") })
        for kind in ["block", "poll", "yield", "suspend"] {
            let count = waits.split(separator: " ").first { $0.hasPrefix("\(kind)=") }.flatMap { Int($0.dropFirst(kind.count + 1)) }
            #expect((count ?? 0) >= 200, "\(kind): \(waits)")
        }
        #expect(r.lines.contains { $0.hasPrefix("(tern) d0 (pingpong): ran on pcpus 0 1, at most 2 vcpus at once") })
        let pending = try #require(number("(d0) pingpong: poll on a pending masked port returned 0 after", before: "ms"))
        #expect(pending < 500, "a pending port must end the poll at once (timeout 2000 ms): \(pending) ms")
        let woken = try #require(number("(d0) pingpong: poll on a masked port woke after", before: "ms"))
        #expect(woken >= 90 && woken < 1000, "the event came after 100 ms (timeout 3000 ms): \(woken) ms")
        let timedOut = try #require(number("(d0) pingpong: poll with nothing to wake it returned 0 after", before: "ms"))
        #expect(timedOut >= 100 && timedOut < 1000, "\(timedOut) ms")
    }

    /// The EL1 physical timer is emulated like Xen's vtimer, and both timers' interrupts are level-
    /// sensitive: fired while the guest had interrupts masked, then disabled, masked or moved into the
    /// future before the guest took it, the interrupt is gone; left alone, it arrives.
    @Test func timerInterruptsFollowTheirTimers() throws {
        let r = try run(["timers"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        let fired = try #require(r.lines.first { $0.hasPrefix("(d0) timers: physical timer interrupts ") })
        #expect(fired.hasPrefix("(d0) timers: physical timer interrupts 1 after ") && fired.hasSuffix(" ms, ctl 0x5"), "\(fired)")
        for timer in ["virtual", "physical"] {
            // Left alone before and after the withdrawals: it interrupts both times.
            #expect(r.lines.filter { $0 == "(d0) timers: \(timer) timer left alone: 1 interrupts" }.count == 2)
            for change in ["disabled", "masked", "moved into the future"] {
                #expect(r.lines.contains("(d0) timers: \(timer) timer \(change) before it was taken: 0 interrupts"))
            }
        }
    }

    /// One hypercall asked for a lot of work (a 512 KiB console write) does it in continuations, as
    /// Xen does: a domain sharing the one CPU gets it back at every slice end, not after the whole write.
    @Test func aLongHypercallLetsOthersRun() throws {
        let r = try run(["spin-gaps", "hog-console"], smp: 1)
        #expect(r.allPoweredOff, "\(r.lines.filter { !$0.hasPrefix("(d1) ....") }.joined(separator: "\n"))")
        func number(_ marker: String, before unit: String) -> Int? {
            guard let line = r.lines.first(where: { $0.contains(marker) }) else { return nil }
            let words = line.split(separator: " ")
            return words.firstIndex(of: Substring(unit)).flatMap { $0 > 0 ? Int(words[$0 - 1]) : nil }
        }
        let writeMs = try #require(number("hog: console_io write of 512 KiB = 0 in", before: "ms"))
        let gapUs = try #require(number("(d0) spin: longest gap", before: "us"))
        #expect(writeMs >= 100, "the write must take long enough to tell: \(writeMs) ms")
        #expect(gapUs / 1000 < writeMs / 4, "kept from the CPU for \(gapUs) us during a write of \(writeMs) ms")
    }

    /// A 1 GiB domain that ends is scrubbed a chunk per scheduling pass, outside the scheduler lock: the
    /// domain sharing its one CPU waits about a time slice at most, not for the whole scrub.
    @Test func destroyingALargeDomainDoesNotStallTheOthers() throws {
        let r = try run(["spin-gaps", "big-hello"], smp: 1)
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        #expect(r.lines.contains("(d1) hello: guest done, powering off"))
        let gap = try #require(ReclaimBenchmark.longestGap(r.lines))
        // Before the scrub left the lock it waited 3.4 s here; now a few slices (15-45 ms in make bench),
        // so the bound leaves room for a loaded host.
        #expect(gap < 300_000, "kept from the CPU for \(gap) us while 1 GiB was scrubbed")
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

    /// Grant tables between two of our guests: d2 maps d1's grant into its own address space, reads the
    /// message and answers through the mapping, copies with GNTTABOP_copy, is refused what the grant
    /// does not allow, and unmaps; d1 sees GTF_reading|GTF_writing while the page is mapped and not after.
    @Test func grantsAreMappedCopiedAndUnmappedBetweenDomains() throws {
        let r = try run(["dom0", "grant-granter", "grant-mapper"])
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        let message = "\"TERN-GRANT-42 from the granter\""
        for line in [
            "(d2) grant: mapped ref 8 of d1, handle 0: \(message)",
            "(d2) grant: copy from ref 8 = 0: \(message)",
            "(d1) grant: the mapper wrote \"ACK from the mapper\"",
            "(d1) grant: ref 8 flags while mapped 0x19",          // permit_access | reading | writing
            "(d2) grant: copy into read-only ref 9 = -1",         // GNTST_general_error, as Xen says
            "(d2) grant: writable map of read-only ref 9 = -1",
            "(d2) grant: map of ref 8 at an unaligned address = -5",
            "(d2) grant: map of ref 8 over our own RAM = -5",
            "(d2) grant: map of ref 8 of domain 99 = -2",
            "(d2) grant: map of ref 3 (never granted) = -1",
            "(d2) grant: map of ref 9999 (beyond the table) = -3",
            "(d2) grant: copy across a page end = -10",
            "(d2) grant: copy from a frame not ours = -8",
            "(d2) grant: unmap = 0",
            "(d2) grant: unmap again = -4",
            "(d1) grant: ref 8 flags after the unmap 0x1",
            "(d1) grant: ref 8 revoked",
        ] {
            #expect(r.lines.contains(line), "\(line)")
        }
    }

    /// The two grant guests with other arguments, in temporary configs the caller removes.
    func grantConfigs(granter: String, mapper: String) throws -> [URL] {
        try [("granter", "role=granter peer=2 \(granter)"), ("mapper", "role=mapper peer=1 \(mapper)")].map { name, extra in
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("tern-test-\(name)-\(UUID().uuidString).cfg")
            try "name = \"\(name)\"\nkernel = \"tern:grant\"\nmemory = 32\nextra = \"\(extra)\"\n"
                .write(to: url, atomically: true, encoding: .utf8)
            return url
        }
    }

    /// A domain that dies while another maps its grant keeps its memory until the unmap, so the mapper
    /// goes on reading the same bytes and nothing else is ever given that memory meanwhile.
    @Test func aGranterThatDiesKeepsItsMemoryUntilTheUnmap() throws {
        let configs = try grantConfigs(granter: "leave=early", mapper: "linger=300")
        defer { for c in configs { try? FileManager.default.removeItem(at: c) } }
        let r = try runner.run(configs: [example("dom0")] + configs, timeout: 120)
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        func index(_ line: String) -> Int? { r.lines.firstIndex(of: line) }
        let kept = try #require(index("(tern) d1 (granter): memory kept while other domains map 1 of its grants"))
        let read = try #require(index("(d2) grant: still mapped: \"TERN-GRANT-42 from the granter\""))
        let unmapped = try #require(index("(d2) grant: unmap = 0"))
        let released = try #require(index("(tern) d1 (granter): its grants are no longer mapped; memory released"))
        #expect(index("(tern) d1 (granter): shutdown: poweroff via SCHEDOP_shutdown").map { $0 < kept } == true)
        // The mapper reads through the mapping before the memory goes; its "unmap = 0" line is printed
        // after the unmap returns, by which time another CPU may already have released the memory.
        #expect(kept < read && read < released && read < unmapped)
    }

    /// A granter that ends its grant while it is mapped (a hostile revoke) changes nothing for the
    /// mapping: the mapper goes on seeing the granter's page (what the granter writes after the revoke
    /// too), a new map of the revoked entry is refused, and the unmap succeeds.
    @Test func aGrantRevokedWhileMappedKeepsTheMappingAndGivesNoMore() throws {
        let configs = try grantConfigs(granter: "leave=revoke", mapper: "leave=revoke")
        defer { for c in configs { try? FileManager.default.removeItem(at: c) } }
        let r = try runner.run(configs: [example("dom0")] + configs, timeout: 120)
        #expect(r.allPoweredOff, "\(r.lines.joined(separator: "\n"))")
        for line in [
            "(d1) grant: ref 8 revoked while mapped",
            "(d2) grant: after the revoke the mapping shows \"WRITTEN-AFTER-THE-REVOKE\"",
            "(d2) grant: map of revoked ref 8 = -1",
            "(d2) grant: still mapped: \"TERN-GRANT-42 from the granter\"",
            "(d2) grant: unmap = 0",
        ] {
            #expect(r.lines.contains(line), "\(line)\n\(r.lines.joined(separator: "\n"))")
        }
    }

    /// A mapper that dies with a grant still mapped loses the mapping with its life: the granter sees
    /// its entry free again and can revoke it.
    @Test func aMapperThatCrashesGivesItsMappingsBack() throws {
        let configs = try grantConfigs(granter: "", mapper: "leave=crash")
        defer { for c in configs { try? FileManager.default.removeItem(at: c) } }
        let r = try runner.run(configs: [example("dom0")] + configs, timeout: 120)
        #expect(r.shutdowns == [0: "poweroff", 1: "poweroff", 2: "crash"], "\(r.lines.joined(separator: "\n"))")
        #expect(r.lines.contains("(d2) grant: crashing with ref 8 still mapped"))
        #expect(r.lines.contains("(d1) grant: ref 8 flags after the unmap 0x1"))
        #expect(r.lines.contains("(d1) grant: ref 8 revoked"))
    }

    /// SCHEDOP_watchdog: pokes keep the domain alive past its timeout (three at half the timeout);
    /// once they stop, Tern ends it with reason watchdog while it sleeps, and on_watchdog applies.
    @Test func aWatchdogThatIsNotPokedEndsTheDomain() throws {
        let r = try run(["dom0", "watchdog"])
        #expect(r.exitedByItself, "\(r.lines.joined(separator: "\n"))")
        #expect(r.shutdowns == [0: "poweroff", 1: "watchdog"])
        #expect(r.lines.contains("(d1) watchdog: armed id 1 for 1 s"))
        #expect(r.lines.contains("(d1) watchdog: second id 2, a third -28"))       // -ENOSPC: two per domain
        #expect(r.lines.contains("(d1) watchdog: stopping id 2 = 0"))
        #expect(r.lines.contains("(d1) watchdog: poking id 5 = -22"))
        #expect(r.lines.contains("(d1) watchdog: poke 3 = 0"))
        #expect(r.lines.contains("(tern) d1 (watchdog): watchdog timer fired"))
        #expect(r.lines.contains("(tern) d1 (watchdog): shutdown: watchdog (preserved)"))
        #expect(!r.lines.contains { $0.hasPrefix("(d1) watchdog: still here") })
    }
}
