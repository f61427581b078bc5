// Debian's own arm64 kernel and a busybox initramfs (scripts/fetch-linux.sh) as guests. Each test
// asserts what Linux's init prints from inside the guest and how the hypervisor says the domain ended.
import Foundation
import Testing
import TernTool

/// Fetches the kernel and builds the initramfs once per test process (a no-op when they are cached).
enum LinuxAssets {
    static let ready: Result<Void, Error> = Result { try runScript("scripts/fetch-linux.sh") }

    /// Runs one of the project's scripts from its root; throws unless it exits 0.
    static func runScript(_ path: String) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = Process()
        script.executableURL = root.appendingPathComponent(path)
        script.currentDirectoryURL = root
        try script.run()
        script.waitUntilExit()
        guard script.terminationStatus == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "\(path) failed"])
        }
    }

    static func require() throws { try ready.get() }
}

/// Counts lines across the reader thread, for stop conditions like "the second boot reached userspace".
final class LineCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func bump() -> Int {
        lock.lock()
        defer { lock.unlock() }
        count += 1
        return count
    }
}

extension BootTests {
    static let marker = "TERN-LINUX-USERSPACE-UP"

    func linuxLines(_ r: RunResult, _ domain: Int) -> [String] { lines(r, "(d\(domain)) ") }

    /// What the n-th run of a tern.run `command` printed in dom0 (`out`: linuxLines of domain 0), up to
    /// its status line, with kernel messages left out and without the "(d0) " prefix.
    func dom0Printed(_ out: [String], by command: String, _ n: Int = 0) -> [String] {
        let starts = out.indices.filter { out[$0].hasSuffix("TERN-DOM0-RUN: \(command)") }
        guard n < starts.count else { return [] }
        return out[(starts[n] + 1)...].prefix { !$0.hasPrefix("(d0) TERN-DOM0-STATUS: ") }
            .filter { !$0.contains("] ") }.map { String($0.dropFirst(5)) }
    }

    /// A config for Debian's kernel and the initramfs that only this test needs, in a temporary file
    /// (the kernel's path is absolute there). The caller removes it.
    func linuxConfig(_ name: String, _ settings: String) throws -> URL {
        let cache = example("linux").deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".cache/linux")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-test-\(name).cfg")
        try """
            name = "\(name)"
            kernel = "\(cache.path)/Image"
            ramdisk = "\(cache.path)/initrd.cpio.gz"
            \(settings)
            """.write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    func expectLinuxReachedUserspace(_ r: RunResult, domain: Int, cpus: String,
                                     sourceLocation: SourceLocation = #_sourceLocation) {
        let out = linuxLines(r, domain)
        #expect(out.contains { $0.hasSuffix("Booting Linux on physical CPU 0x0000000000 [0x411fd070]") },
                sourceLocation: sourceLocation)
        #expect(out.contains("(d\(domain)) \(Self.marker)"), "\(r.lines.suffix(40).joined(separator: "\n"))",
                sourceLocation: sourceLocation)
        #expect(out.contains("(d\(domain)) cpus online: \(cpus)"), sourceLocation: sourceLocation)
        // The emulated UART is what Linux printed all this through, bound by the sbsa-uart driver.
        #expect(out.contains { $0.contains("22000000.sbsa-uart: ttyAMA0 at MMIO 0x22000000") && $0.contains("is a SBSA") },
                sourceLocation: sourceLocation)
        #expect(out.contains { $0.contains("GICv3  27 Level     arch_timer") }, sourceLocation: sourceLocation)
    }

    @Test func linuxBootsAsAPlainDomU() throws {
        try LinuxAssets.require()
        let r = try run(["dom0", "linux"], timeout: 240)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        expectLinuxReachedUserspace(r, domain: 1, cpus: "0")
        #expect(r.shutdowns == [0: "poweroff", 1: "poweroff"])
        #expect(r.lines.contains("(tern) d1 (linux): shutdown: poweroff via PSCI SYSTEM_OFF"))
        #expect(linuxLines(r, 1).contains { $0.contains("Machine model: XENVM-4.17") })
        // A plain VM: Linux finds no hypervisor node.
        #expect(!linuxLines(r, 1).contains { $0.contains("Xen 4.17 support found") })
        #expect(linuxLines(r, 1).contains { $0.contains("psci: PSCIv1.0 detected in firmware.") })
    }

    @Test func linuxBringsUpItsSecondVCPUThroughPSCI() throws {
        try LinuxAssets.require()
        let r = try run(["dom0", "linux-smp"], timeout: 300)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        expectLinuxReachedUserspace(r, domain: 1, cpus: "0-1")
        #expect(linuxLines(r, 1).filter { $0.hasPrefix("(d1) processor\t: ") }.count == 2)
        #expect(linuxLines(r, 1).contains { $0.contains("smp: Brought up 1 node, 2 CPUs") })
        // 1 GiB configured: Linux sees nearly all of it (the kernel and CMA take their share).
        let total = try #require(linuxLines(r, 1).first { $0.hasPrefix("(d1) memory: MemTotal:") })
        let kb = try #require(Int(total.split(separator: " ").dropLast().last ?? ""))
        #expect(kb > 900_000 && kb <= 1_048_576, "\(total)")
        #expect(r.lines.contains { $0.hasPrefix("(tern) d1 (linux-smp): ran on pcpus 0 1, at most 2 vcpus at once") })
    }

    @Test func twoLinuxDomUsRunBesideATernGuest() throws {
        try LinuxAssets.require()
        let r = try run(["dom0", "linux", "linux-64"], timeout: 300)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        expectLinuxReachedUserspace(r, domain: 1, cpus: "0")
        expectLinuxReachedUserspace(r, domain: 2, cpus: "0")
        #expect(r.shutdowns == [0: "poweroff", 1: "poweroff", 2: "poweroff"])
        // 64 MiB is enough for userspace, and Linux's view of it matches.
        let total = try #require(linuxLines(r, 2).first { $0.hasPrefix("(d2) memory: MemTotal:") })
        let kb = try #require(Int(total.split(separator: " ").dropLast().last ?? ""))
        #expect(kb > 20_000 && kb < 65_536, "\(total)")
    }

    @Test func linuxRebootRestartsTheDomain() throws {
        try LinuxAssets.require()
        let boots = LineCounter()
        let r = try runner.run(configs: [example("dom0"), example("linux-reboot")], timeout: 300, stopWhen: { line in
            line == "(d1) \(Self.marker)" && boots.bump() == 2
        })
        #expect(r.stopped, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.lines.contains("(tern) d1 (linux-reboot): shutdown: reboot via PSCI SYSTEM_RESET (restarting)"))
        #expect(r.lines.contains("(tern) d1 (linux-reboot): restarted (1)"))
        #expect(r.lines.filter { $0 == "(d1) \(Self.marker)" }.count == 2)
        #expect(r.shutdowns[0] == "poweroff")
    }

    @Test func linuxSeesXenAndUsesItsInterfaces() throws {
        try LinuxAssets.require()
        let r = try run(["dom0", "linux-pv"], timeout: 300)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        expectLinuxReachedUserspace(r, domain: 1, cpus: "0-1")
        let out = linuxLines(r, 1)
        // Its console is hvc0, the PV ring Tern's backend serves: the marker came that way.
        #expect(out.contains("(d1) console: hvc0"))
        // What init printed from dmesg, after the marker: Xen found, grant table and event channels up.
        let afterMarker = Array(out.drop { $0 != "(d1) \(Self.marker)" })
        for expected in ["Xen 4.17 support found", "xen:grant_table: Grant tables using version 1 layout",
                         "Grant table initialized", "xen:events: Using FIFO-based ABI",
                         "Xen: initializing cpu0", "Xen: initializing cpu1"] {
            #expect(afterMarker.contains { $0.hasSuffix("] " + expected) }, "\(expected)")
        }
        // The upcall PPI is wired: Linux requested it and took it on both vCPUs (vcpu_info registration
        // announces "look at everything" with one).
        let events = try #require(out.first { $0.hasSuffix("GICv3  31 Level     events") })
        let counts = events.split(separator: " ").dropFirst(2).prefix(2).compactMap { Int($0) }
        #expect(counts.count == 2 && counts.allSatisfy { $0 >= 1 }, "\(events)")
        #expect(r.lines.contains("(tern) d1 (linux-pv): shutdown: poweroff via SCHEDOP_shutdown"))
        // Nothing Linux asked for was missing.
        let missing = r.lines.filter { $0.hasPrefix("(tern) d1 (linux-pv): hypercall") }
        #expect(missing.isEmpty, "\(missing)")
        // /sys/hypervisor, filled by Linux from xen_version: Xen's shapes, Tern's own words.
        for expected in ["type: xen", "version/major: 4", "version/minor: 17", "version/extra: -tern",
                         "properties/capabilities: xen-3.0-aarch64 ", "properties/pagesize: 1000",
                         "compilation/compiler: Swift 6.3 (Embedded)"] {
            #expect(out.contains("(d1) hypervisor \(expected)"), "\(expected)")
        }
    }

    @Test func linuxBootsAsADirectMappedDom0BesideTernGuests() throws {
        try LinuxAssets.require()
        let r = try run(["linux-dom0", "hello", "linux-pv"], timeout: 300)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.shutdowns == [0: "poweroff", 1: "poweroff", 2: "poweroff"])
        let out = linuxLines(r, 0)
        #expect(out.contains("(d0) \(Self.marker)"))
        #expect(out.contains("(d0) console: hvc0"))
        #expect(out.contains("(d0) cpus online: 0-1"))
        // Direct-mapped: the RAM Linux finds is where the hypervisor put it in host memory.
        let placed = try #require(r.lines.first { $0.hasPrefix("(tern) d0 (linux-dom0): 512 MiB at 0x") })
        let host = try #require(placed.split(separator: " ").first { $0.hasPrefix("0x") }.flatMap { UInt64($0.dropFirst(2).dropLast(), radix: 16) })
        #expect(out.contains { $0.hasSuffix(String(format: "Faking a node at [mem 0x%016lx-0x%016lx]", host, host + (512 << 20) - 1)) },
                "\(placed)")
        // XENFEAT_dom0: Linux's hvc0 is the console_io one, woken by VIRQ_CONSOLE, and xenstore is local.
        #expect(out.contains { $0.contains("xen-dyn") && $0.contains("-virq") && $0.hasSuffix("hvc_console") })
        #expect(out.contains { $0.contains("xen-dyn") && $0.hasSuffix("xenbus") })
        #expect(r.lines.contains("(tern) d0 (linux-dom0): shutdown: poweroff via SCHEDOP_shutdown"))
        // The domUs beside it ran to their ends.
        #expect(lines(r, "(d1) hello:").contains { $0.contains("done, powering off") })
        #expect(linuxLines(r, 2).contains("(d2) \(Self.marker)"))
        // The time of day: dom0 reads the board's RTC, passed through to it, and tells Tern with
        // XENPF_settime64; the Xen-aware domU sets its clock from shared_info. QEMU's RTC is the host's.
        #expect(out.contains { $0.hasSuffix("rtc-pl031 9010000.pl031: registered as rtc0") })
        // Nothing Linux asks of Xen as dom0 is missing: FIFO event channels, settime64 and the cache-flush
        // probe are answered.
        #expect(!r.lines.contains { $0.hasPrefix("(tern) d0 ") && $0.hasSuffix("is not implemented (-ENOSYS)") })
        #expect(out.contains { $0.hasSuffix("] xen:events: Using FIFO-based ABI") })
        for d in [0, 2] {
            let line = try #require(linuxLines(r, d).first { $0.hasPrefix("(d\(d)) date: ") })
            let date = try #require(Self.utc.date(from: String(line.dropFirst("(d0) date: ".count))), "\(line)")
            #expect(abs(date.timeIntervalSinceNow) < 600, "\(line)")
        }
    }

    static let utc: DateFormatter = {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return f
    }()

    /// A config like `example` but whose init ends in a shell, for typing at.
    func shellConfig(_ example: String, name: String) throws -> URL {
        let source = try String(contentsOf: self.example(example), encoding: .utf8)
        let cache = self.example(example).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".cache/linux").path
        let text = source.replacingOccurrences(of: "../.cache/linux", with: cache)
            .replacingOccurrences(of: "rdinit=/init", with: "rdinit=/init tern.test=shell")
            .replacingOccurrences(of: "name = \"\(example)\"", with: "name = \"\(name)\"")
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tern-\(name)-\(UUID().uuidString).cfg")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func typedInputReachesAPlainDomUThroughItsUART() throws {
        try LinuxAssets.require()
        let shell = try shellConfig("linux", name: "shell")
        defer { try? FileManager.default.removeItem(at: shell) }
        let r = try runner.run(configs: [example("dom0"), shell], timeout: 300, typeWhen: { line in
            // CTRL-a three times moves the focus to d1 (d0 may already be gone; then it is d1 anyway).
            line == "(d1) TERN-LINUX-DONE shell" ? "\u{1}\u{1}\u{1}\necho typed-$((6*7))\npoweroff -f\n" : nil
        })
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.lines.contains("(tern) *** console input goes to d1 (shell) (type CTRL-a three times to switch)"))
        #expect(r.lines.contains("(d1) typed-42"))
        #expect(r.lines.contains("(tern) d1 (shell): shutdown: poweroff via PSCI SYSTEM_OFF"))
    }

    @Test func typedInputReachesLinuxDom0ThroughVIRQConsole() throws {
        try LinuxAssets.require()
        let shell = try shellConfig("linux-dom0", name: "dom0-shell")
        defer { try? FileManager.default.removeItem(at: shell) }
        let r = try runner.run(configs: [shell], timeout: 300, typeWhen: { line in
            line == "(d0) TERN-LINUX-DONE shell"
                ? "\necho typed-$((6*7))\ngrep hvc_console /proc/interrupts\npoweroff -f\n" : nil
        })
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.lines.contains("(d0) typed-42"))
        // Each keystroke batch was announced by an event on the VIRQ_CONSOLE port: upcalls reach Linux.
        // The last count is the one grep printed (init listed the same line, still at 0, at boot).
        let irq = try #require(r.lines.last { $0.hasPrefix("(d0) ") && $0.hasSuffix("hvc_console") && !$0.contains("grep") })
        let counts = irq.split(separator: " ").dropFirst(2).prefix(2).compactMap { Int($0) }
        #expect(counts.reduce(0, +) >= 1, "\(irq)")
    }

    @Test func crashingLinuxIsPreservedAndOthersFinish() throws {
        try LinuxAssets.require()
        let r = try run(["dom0", "linux-crash", "linux-64"], timeout: 300)
        #expect(r.exitedByItself, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.shutdowns == [0: "poweroff", 1: "crash", 2: "poweroff"])
        #expect(r.lines.contains("(d1) TERN-LINUX-DONE crash"))
        #expect(r.lines.contains { $0.hasPrefix("(tern) d1 (linux-crash): read at guest address 0x10000000 with nothing there") })
        // The abort is Linux's to handle: the reader dies of a bus error, the kernel lives on.
        #expect(linuxLines(r, 1).contains { $0.hasSuffix("Bus error") }, "\(linuxLines(r, 1).suffix(20))")
        #expect(linuxLines(r, 1).contains { $0.contains("devmem ended with status 135; init gives up") })
        // Then init exits and the kernel panics: on_crash = "preserve" keeps it, not rebuilt; the other
        // Linux is untouched.
        #expect(r.lines.contains("(tern) d1 (linux-crash): shutdown: crash via Linux panic (preserved)"))
        #expect(!r.lines.contains { $0.contains("(linux-crash): restarted") })
        #expect(linuxLines(r, 2).contains("(d2) \(Self.marker)"))
    }

    /// Linux tells Arm firmware nothing when it panics; Tern reads the banner off the console. A kernel
    /// that spins after the banner (panic=0) is ended once the report is complete; one that restarts
    /// itself (panic=1) is reported as crashed, not rebooted. With detect_panic = 0 the same restart is
    /// a reboot again.
    @Test func panickingLinuxEndsAsCrashed() throws {
        try LinuxAssets.require()
        let ignoring = try linuxConfig("panic-ignored", """
            memory = 128
            extra = "console=hvc0 rdinit=/init panic=1 tern.test=panic"
            detect_panic = 0
            on_reboot = "destroy"
            """)
        defer { try? FileManager.default.removeItem(at: ignoring) }
        let r = try runner.run(configs: ["dom0", "linux-panic", "linux-pv-panic"].map(example) + [ignoring], timeout: 300)
        #expect(r.exitedByItself, "\(r.lines.suffix(40).joined(separator: "\n"))")
        #expect(r.shutdowns == [0: "poweroff", 1: "crash", 2: "crash", 3: "reboot"])
        for d in 1 ... 3 {
            #expect(linuxLines(r, d).contains { $0.hasSuffix("Kernel panic - not syncing: sysrq triggered crash") })
        }
        // Plain domU on the emulated UART, 2 vCPUs: the whole report is out before the domain ends, and
        // on_crash = "preserve" keeps it.
        #expect(linuxLines(r, 1).contains { $0.hasSuffix("SMP: stopping secondary CPUs") })
        #expect(linuxLines(r, 1).last?.hasSuffix("---[ end Kernel panic - not syncing: sysrq triggered crash ]---") == true)
        #expect(r.lines.contains("(tern) d1 (linux-panic): shutdown: crash via Linux panic (preserved)"))
        // hvc0 domU, panic=1: the restart it asks for after the banner is taken as the crash it is.
        #expect(linuxLines(r, 2).contains { $0.hasSuffix("Rebooting in 1 seconds..") })
        #expect(r.lines.contains("(tern) d2 (linux-pv-panic): shutdown: crash via Linux panic, then SCHEDOP_shutdown"))
        #expect(r.lines.contains("(tern) d3 (panic-ignored): shutdown: reboot via SCHEDOP_shutdown"))
        #expect(!r.lines.contains { $0.contains("restarted") })
    }

    /// Xen's runstate area: a Xen-aware Linux that shares its CPU with a busy guest sees the time it
    /// waited as steal in /proc/stat, because Tern rewrites the area on every switch.
    @Test func linuxSeesStealTimeWhenItSharesACPU() throws {
        try LinuxAssets.require()
        let linux = try linuxConfig("linux-steal", """
            memory = 128
            cpus = "0"
            extra = "console=hvc0 rdinit=/init"
            """)
        defer { try? FileManager.default.removeItem(at: linux) }
        // spin-256 works for 3 s pinned to pCPU 0, at the same weight as Linux.
        let r = try runner.run(configs: [example("dom0"), example("spin-256"), linux], timeout: 240)
        #expect(r.allPoweredOff, "\(r.lines.suffix(40).joined(separator: "\n"))")
        let stat = try #require(linuxLines(r, 2).first { $0.hasPrefix("(d2) stat: cpu ") })
        let ticks = stat.split(separator: " ").dropFirst(3).compactMap { Int($0) }
        #expect(ticks.count == 10, "\(stat)")
        // user nice system idle iowait irq softirq steal: steal, in 10 ms ticks. Half of Linux's boot
        // is spent waiting for the spinner; a tenth of a second is far below that.
        #expect(ticks.count > 7 && ticks[7] >= 10, "\(stat)")
        // The spinner was not short-changed for it.
        #expect(r.shutdowns[1] == "poweroff")
        #expect(!r.lines.contains { $0.contains("hypercall 21") })
    }
}
