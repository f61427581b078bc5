import Foundation
import Testing
@testable import TernTool

@Suite struct ShutdownLineTests {
    @Test func parsesTheHypervisorsReport() {
        #expect(ShutdownLine("(tern) d1 (hello): shutdown: poweroff") == ShutdownLine(domain: 1, name: "hello", reason: "poweroff"))
        #expect(ShutdownLine("(tern) d2 (x): shutdown: reboot via PSCI SYSTEM_RESET (restarting)")
                == ShutdownLine(domain: 2, name: "x", reason: "reboot"))
        #expect(ShutdownLine("(tern) d12 (a (b)): shutdown: crash") == ShutdownLine(domain: 12, name: "a (b)", reason: "crash"))
    }

    @Test func ignoresOtherLines() {
        #expect(ShutdownLine("(d1) (tern) d1 (x): shutdown: poweroff") == nil)
        #expect(ShutdownLine("(tern) d1 (hello): ran on pcpus 0, at most 1 vcpus at once") == nil)
        #expect(ShutdownLine("(tern) dx (hello): shutdown: poweroff") == nil)
        #expect(ShutdownLine("(tern) d1 (hello): shutdown: ") == nil)
    }

    @Test func lastShutdownOfADomainWins() {
        let lines = [
            "(tern) d0 (a): shutdown: reboot", "(d0) back again",
            "(tern) d1 (b): shutdown: crash", "(tern) d0 (a): shutdown: poweroff",
        ]
        #expect(RunResult.shutdowns(in: lines) == [0: "poweroff", 1: "crash"])
    }
}

@Suite struct QEMUMachineTests {
    private let machine = QEMUMachine(cpus: 3, memoryMiB: 1100)

    @Test func dumpUsesTheSameMachine() {
        let arguments = machine.dumpArguments(to: URL(fileURLWithPath: "/t/base.dtb"))
        #expect(arguments == ["-M", "virt,virtualization=on,gic-version=3,dumpdtb=/t/base.dtb", "-cpu", "cortex-a57",
                              "-smp", "3", "-m", "1100", "-nographic", "-echr", "0x1d", "-nic", "none"])
    }

    @Test func bootLoadsEachModuleAtItsAddress() {
        let modules = [
            BootModule(domain: 0, kind: .kernel, file: URL(fileURLWithPath: "/i/a,b.img"), address: 0x5000_0000, size: 1),
            BootModule(domain: 1, kind: .kernel, file: URL(fileURLWithPath: "/i/c.img"), address: 0x5020_0000, size: 1),
        ]
        let arguments = machine.bootArguments(dtb: URL(fileURLWithPath: "/t/boot.dtb"),
                                              hypervisor: URL(fileURLWithPath: "/i/hypervisor.bin"),
                                              modules: modules, extra: ["-icount", "shift=0"])
        #expect(arguments == [
            "-M", "virt,virtualization=on,gic-version=3", "-cpu", "cortex-a57", "-smp", "3", "-m", "1100",
            "-nographic", "-echr", "0x1d", "-nic", "none", "-no-reboot", "-dtb", "/t/boot.dtb", "-kernel", "/i/hypervisor.bin",
            "-device", "loader,file=/i/a,,b.img,addr=0x50000000,force-raw=on",
            "-device", "loader,file=/i/c.img,addr=0x50200000,force-raw=on",
            "-icount", "shift=0",
        ])
    }
}

@Suite struct SubprocessTests {
    @Test func streamsLinesAndStopsAtTheDeadline() throws {
        let seen = LineCollector(onLine: { _ in })
        let started = Date()
        let result = try Subprocess.stream(URL(fileURLWithPath: "/bin/sh"), ["-c", "echo one; printf 'two\\r\\n'; echo err >&2; exec sleep 30"],
                                           passStandardInput: false, timeout: 1, onLine: { seen.feed(Data(($0 + "\n").utf8)) })
        #expect(result.timedOut)
        #expect(result.status == nil)
        #expect(Date().timeIntervalSince(started) < 10)
        #expect(result.lines == ["one", "two", "err"])
        #expect(seen.lines == ["one", "two", "err"])
    }

    @Test func aProgramThatEndsReportsItsStatusAndLastPartialLine() throws {
        let result = try Subprocess.stream(URL(fileURLWithPath: "/bin/sh"), ["-c", "echo a; printf b; exit 3"],
                                           passStandardInput: false, timeout: 20, onLine: { _ in })
        #expect(!result.timedOut)
        #expect(result.status == 3)
        #expect(result.lines == ["a", "b"])
    }
}

@Suite struct PackageLayoutTests {
    @Test func foundFromASubfolder() throws {
        let found = try PackageLayout.locate(from: layout.root.appendingPathComponent("Sources/TernTool"))
        #expect(found.root.path == layout.root.path)
    }

    @Test func notFoundOutsideThePackage() {
        #expect(throws: TernToolError.self) { try PackageLayout.locate(from: URL(fileURLWithPath: "/")) }
    }

    @Test func guestsComeFromTheGuestsFolder() {
        let guests = layout.guestNames()
        for guest in ["hello", "spin", "oob", "hostile", "smp", "idle"] { #expect(guests.contains(guest)) }
        #expect(layout.guestImage("hello").path.hasSuffix(".build-metal/images/guest-hello.img"))
        #expect(layout.hypervisorImage.path.hasSuffix(".build-metal/images/hypervisor.bin"))
    }
}

@Suite struct LockContentionTests {
    @Test func theWaitShareIsTheCPUsWaitsOverTheirTime() throws {
        let lines = [
            "(tern) all domains have ended; powering off",
            "(tern) pcpu0: idle 0 ms of 1000 ms, waited 10000 us for run-queue locks (30 times)",
            "(tern) pcpu1: idle 5 ms of 1000 ms, waited 30000 us for run-queue locks (40 times)",
            "(d0) pcpu-ish guest line: idle of nothing",
        ]
        let share = try #require(LockContentionBenchmark.waitShare(lines: lines))
        #expect(abs(share - 2.0) < 1e-9)                     // 40 ms of 2000 ms
        #expect(LockContentionBenchmark.waitShare(lines: ["(tern) pcpu0: idle 3 ms of 9 ms"]) == nil)
        #expect(LockContentionBenchmark.waitShare(lines: []) == nil)
    }
}

@Suite struct ToolstackBenchmarkTests {
    private let commands = ["tern-settle", "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-USERSPACE-UP",
                            "xl destroy domu1", "tern-settle"]

    /// dom0's lines as Tern prints them ("(d0) " first) and as Xen does (bare), timed from QEMU's start.
    private func lines(prefix: String, statuses: [String] = ["0", "0", "0", "0", "0"]) -> ([String], [TimeInterval]) {
        var lines = ["\(prefix)TERN-DOM0-USERSPACE-UP"], times: [TimeInterval] = [10]
        var t = 20.0
        for (c, s) in zip(commands, statuses) {
            lines += ["\(prefix)TERN-DOM0-RUN: \(c)", "\(prefix)some output", "\(prefix)TERN-DOM0-STATUS: \(s)"]
            times += [t, t + 0.5, t + 2]
            t += 10
        }
        return (lines, times)
    }

    @Test func phasesAreTheBootTheCreateAndTheDestroy() {
        for prefix in ["(d0) ", ""] {
            let (l, t) = lines(prefix: prefix)
            // Up at the first command (20 s); create from its start (30) to its own end (32) and to
            // tern-wait's end (42); destroy from its start (50) to tern-settle's end (62).
            let p = ToolstackBenchmark.phases(l, t)
            #expect(p != nil)
            if let p {
                #expect(p[0] == 20)
                #expect(p[1] == 2 && p[2] == 12 && p[3] == 12, "\(p)")
            }
        }
    }

    @Test func aFailedOrMissingCommandGivesNoSample() {
        let (l, t) = lines(prefix: "(d0) ", statuses: ["0", "0", "1", "0", "0"])
        #expect(ToolstackBenchmark.phases(l, t) == nil)
        let (cut, cutTimes) = lines(prefix: "")
        #expect(ToolstackBenchmark.phases(Array(cut.dropLast(3)), Array(cutTimes.dropLast(3))) == nil)
    }
}

@Suite struct SplitDriverBenchmarkTests {
    /// The rates and the round trip from the lines the guests and dom0 print, with Tern's "(d0) " or
    /// without (Xen); a missing or zero-time line gives no value rather than a made-up one.
    @Test func ratesComeFromTheGuestsLines() {
        for prefix in ["(d0) ", ""] {
            let lines = [
                "\(prefix)TERN-BENCH: disk write 67108864 bytes in 4000000 us",
                "\(prefix)TERN-BENCH: disk read 67108864 bytes in 2000000 us",
                "\(prefix)TERN-BENCH: disk iops 812 reads 4062 in 5001234 us",
                "\(prefix)round-trip min/avg/max = 9.000/9.000/9.000 ms",
                "\(prefix)round-trip min/avg/max = 1.100/2.250/4.000 ms",
                "\(prefix)TERN-BENCH: fetched 16777216 bytes in 800 cs",
                "\(prefix)TERN-BENCH: net fetched 16777216 bytes in 1600 cs",
            ]
            #expect(SplitDriverBenchmark.measurements(lines) == [16, 32, 812, 2, 1, 2.25])
        }
        #expect(SplitDriverBenchmark.measurements(["TERN-BENCH: disk write 67108864 bytes in 0 us",
                                                   "TERN-BENCH: disk read 67108864 bytes in 2000000 us",
                                                   "TERN-BENCH: disk iops 0 reads 0 in 5 us",
                                                   "TERN-BENCH: fetched 0 bytes in 5 cs"])
                == [nil, 32, nil, nil, nil, nil])
    }
}
