// Xen 4.17's own toolstack from Debian (xen-utils-4.17: xl, libxl, xenstored, xenconsoled,
// xen-init-dom0), unmodified, in a Linux control domain on Tern (scripts/fetch-toolstack.sh builds
// its initramfs). Each test asserts what the tools print inside dom0.
import Foundation
import Testing
import TernTool

/// Fetches the toolstack and builds dom0's initramfs once per test process (a no-op when cached).
enum ToolstackAssets {
    static let ready: Result<Void, Error> = Result {
        try LinuxAssets.require()
        try LinuxAssets.runScript("scripts/fetch-toolstack.sh")
    }

    static func require() throws { try ready.get() }
}

extension BootTests {
    /// dom0's toolstack starts as on Xen (xenstored, xen-init-dom0 naming Domain-0 in xenstore,
    /// xenconsoled), then `xl info` describes the machine from sysctl physinfo, sched_id, cputopoinfo,
    /// numainfo and cpupool_op, and `xl list` lists both domains from getdomaininfolist: dom0 running
    /// with its 512 MiB (less the page init-dom0less mapped: 511) and 2 vCPUs, and a sleeping domU of
    /// the boot configuration, which init-dom0less named (it never connects: it does not use xenstore);
    /// `xl dmesg` reads Tern's console history (sysctl readconsole), without dom0's own lines, as on Xen;
    /// `xl vcpu-list` shows every vCPU.
    @Test func xlInfoListAndDmesgRunInALinuxDom0() throws {
        try ToolstackAssets.require()
        let r = try runner.run(configs: [example("xl-dom0"), example("sleeper")], smp: 2, timeout: 150)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        #expect(r.allPoweredOff, "\(log)")
        #expect(out.contains("(d0) TERN-DOM0: capabilities: control_d"), "\(log)")
        #expect(out.contains("(d0) TERN-DOM0: xenstored exit 0"))
        #expect(out.contains("(d0) TERN-DOM0: xen-init-dom0 exit 0"), "\(log)")
        #expect(out.contains("(d0) TERN-DOM0: xenconsoled exit 0"))
        // xl info, as on Xen 4.17 on Arm (one thread per core, one node).
        for line in ["nr_cpus                : 2", "max_cpu_id             : 1", "nr_nodes               : 1",
                     "cores_per_socket       : 1", "threads_per_core       : 1", "cpu_mhz                : 62.500",
                     "virt_caps              : hvm hap gnttab-v1", "xen_version            : 4.17-tern",
                     "xen_scheduler          : credit2"] {
            #expect(out.contains("(d0) \(line)"), "missing \(line)\n\(log)")
        }
        #expect(out.contains { $0.hasPrefix("(d0) total_memory           : ") })
        #expect(out.contains { $0.hasPrefix("(d0) free_memory            : ") })
        // xl list: name, ID, MiB, vCPUs, state (r: running, b: blocked), CPU seconds.
        let dom0 = try #require(out.first { $0.hasPrefix("(d0) Domain-0 ") }, "\(log)")
        let fields = dom0.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(Array(fields.dropFirst().prefix(5)) == ["Domain-0", "0", "511", "2", "r-----"], "\(dom0)")
        let domU = try #require(out.first { $0.hasPrefix("(d0) dom0less-1 ") }, "\(log)")
        let columns = domU.replacingOccurrences(of: "\t", with: " ").split(separator: " ").map(String.init)
        #expect(Array(columns.dropFirst().prefix(5)) == ["dom0less-1", "1", "32", "1", "-b----"], "\(domU)")
        // xl dmesg: Tern's lines as it printed them, and the domU's; none of dom0's.
        let dmesg = out.drop { $0 != "(d0) TERN-DOM0-RUN: xl dmesg" }
        #expect(dmesg.contains { $0.hasPrefix("(d0) (tern) Tern 0.1.0 hypervisor (Xen 4.17 guest ABI) at EL2") }, "\(log)")
        #expect(dmesg.contains { $0.hasPrefix("(d0) (tern) boot done in ") && $0.contains(": 2 domains, 2 pcpus") })
        #expect(!dmesg.contains { $0.hasPrefix("(d0) (d0) ") })
        // xl vcpu-list (domctl getvcpuinfo, getvcpuaffinity): dom0's two vCPUs and the domU's one, each
        // on a CPU of the machine, none pinned.
        let vcpus = out.drop { $0 != "(d0) TERN-DOM0-RUN: xl vcpu-list" }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            .filter { $0.count >= 10 && ($0[1] == "Domain-0" || $0[1] == "dom0less-1") }
        #expect(vcpus.map { Array($0[1 ... 3]) } == [["Domain-0", "0", "0"], ["Domain-0", "0", "1"], ["dom0less-1", "1", "0"]], "\(log)")
        #expect(vcpus.allSatisfy { ["0", "1"].contains($0[4]) && Array($0.suffix(3)) == ["all", "/", "all"] }, "\(vcpus)")
        #expect(vcpus.last?[5] == "-b-", "\(vcpus)")                  // the domU waits on its timer
        // Every command ran to its end and said so.
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 4), "\(log)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }

    /// toolstackDom0(running:) for commands written as typed.
    func toolstackDom0(commands: [String]) throws -> URL {
        try toolstackDom0(running: ToolstackBenchmark.ternRun(commands))
    }

    /// The control domain `make bench` times (ToolstackBenchmark.controlDomainConfig) running `commands`
    /// (tern.run's spelling), in a temporary file the caller removes.
    func toolstackDom0(running commands: String) throws -> URL {
        let cache = example("linux").deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".cache/linux")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tern-xl-dom0-\(UUID().uuidString).cfg")
        try ToolstackBenchmark.controlDomainConfig(running: commands, linuxCache: cache).write(to: file, atomically: true, encoding: .utf8)
        return file
    }

    /// xl pause stops a domU (domctl pausedomain): xl list shows it paused, and its timer waits end
    /// late by the time it was held; xl unpause lets it run on, and it finishes.
    @Test func xlPausesAndUnpausesADomU() throws {
        try ToolstackAssets.require()
        let dom0 = try toolstackDom0(running: "xl_pause_1+xl_list+sleep_3+xl_list+xl_unpause_1+xl_list")
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0, example("sleeper")], smp: 2, timeout: 150)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 6), "\(log)")
        let states = out.filter { $0.hasPrefix("(d0) dom0less-1 ") }.map {
            $0.replacingOccurrences(of: "\t", with: " ").split(separator: " ").map(String.init)[5]
        }
        // Paused (p) twice over, before and after the 3 s, and not running; blocked (b) as on Xen while
        // its timer wait is not over. Then blocked in its next wait, or running.
        #expect(states.count == 3, "\(log)")
        #expect(states.prefix(2).allSatisfy { $0 == "--p---" || $0 == "-bp---" }, "\(states)")
        #expect(states.last.map { $0 == "-b----" || $0 == "r-----" } == true, "\(states)")
        // 80 waits of 200 ms take 16 s; held for at least the 3 s of the pause, they take longer.
        let idle = try #require(r.lines.first { $0.hasPrefix("(d1) idle: 80 waits of 200 ms took ") }, "\(r.lines.suffix(20).joined(separator: "\n"))")
        let took = Int(idle.split(separator: " ")[8]) ?? 0
        #expect(took >= 19_000, "\(idle)")
    }

    /// xl sched-credit2 sets the pool's ratelimit (sysctl scheduler_op) and a domU's weight and cap
    /// (domctl scheduler_op) and reads them back; then
    /// xl destroy ends it whatever its config says (domctl destroydomain): Tern says so, releases it,
    /// and xl list no longer shows it. The domU never finishes its waits.
    @Test func xlReweighsAndDestroysADomU() throws {
        try ToolstackAssets.require()
        let dom0 = try toolstackDom0(running: "xl_sched-credit2_-s_-r_500+xl_sched-credit2_-d_1_-w_512_-c_50+xl_sched-credit2+xl_list+xl_destroy_1+sleep_1+xl_list")
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0, example("sleeper")], smp: 2, timeout: 150)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 7), "\(log)")
        let weights = out.first { $0.hasPrefix("(d0) dom0less-1 ") && $0.split(separator: " ").count == 5 }
        #expect(weights?.split(separator: " ").suffix(3) == ["1", "512", "50"], "\(log)")
        #expect(out.contains("(d0) Cpupool Pool-0: ratelimit=500us"), "\(log)")
        #expect(r.lines.contains("(tern) scheduler: ratelimit 500 us"))
        #expect(r.lines.contains("(tern) d1 (sleeper): shutdown: destroyed by the control domain"), "\(r.lines.suffix(30).joined(separator: "\n"))")
        // Listed before; gone after, so released: a domain leaves the table only when its memory goes back.
        let listings = out.split { $0.hasPrefix("(d0) TERN-DOM0-RUN: ") }
        let before = listings.first { $0.contains { $0.hasPrefix("(d0) Domain-0 ") } }
        #expect(before?.contains { $0.hasPrefix("(d0) dom0less-1 ") } == true, "\(log)")
        let last = try #require(listings.last)
        #expect(last.contains { $0.hasPrefix("(d0) Domain-0 ") } && !last.contains { $0.hasPrefix("(d0) dom0less-1 ") }, "\(log)")
        #expect(!r.lines.contains { $0.hasPrefix("(d1) idle: 80 waits") })
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}

extension BootTests {
    /// A Linux domU of the boot configuration (Xen-aware: `xen,enhanced`) joins xenstore as Xen 4.17's
    /// dom0less domains do: Tern gives it a port unbound to dom0 and STORE_PFN all ones, dom0's init
    /// runs init-dom0less (setmaxmem, a populated page, its grant seeded, setdomainhandle, STORE_PFN),
    /// xenstored introduces it and notifies it; `xl list` names it, and `xl shutdown -w` reaches it
    /// through its xenbus watch: it powers itself off and is gone.
    @Test func bootTimeDomUsJoinXenstoreThroughInitDom0less() throws {
        try ToolstackAssets.require()
        let domU = try linuxConfig("pvhold", """
            memory = 128
            extra = "console=hvc0 rdinit=/init tern.test=hold"
            """)
        let dom0 = try toolstackDom0(commands: [
            "xl list", "xenstore-read /local/domain/1/name /local/domain/1/store/ring-ref", "xl shutdown -w dom0less-1", "xl list",
        ])
        defer {
            try? FileManager.default.removeItem(at: dom0)
            try? FileManager.default.removeItem(at: domU)
        }
        let r = try runner.run(configs: [dom0, domU], smp: 2, timeout: 200)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        let tern = r.lines.filter { $0.hasPrefix("(tern) ") }.joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.contains("(d0) Init dom0less domain: 1") && out.contains("(d0) TERN-DOM0: init-dom0less exit 0"), "\(log)")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 4), "\(log)")
        // Named in xenstore as init-dom0less names it, its page at GUEST_MAGIC_BASE + 1 page.
        let row = out.first { $0.hasPrefix("(d0) dom0less-1 ") }?.replacingOccurrences(of: "\t", with: " ")
            .split(separator: " ").map(String.init)
        #expect(row.map { Array($0.dropFirst().prefix(4)) } == ["dom0less-1", "1", "128", "1"], "\(log)")
        #expect(out.contains("(d0) dom0less-1") && out.contains("(d0) 233473"), "\(log)")
        // The domU heard xl's request through its own xenstore connection and acted on it.
        #expect(r.lines.contains("(d1) TERN-LINUX: asked to power off"), "\(r.lines.filter { $0.hasPrefix("(d1) ") }.suffix(20).joined(separator: "\n"))")
        #expect(tern.contains("(tern) d1 (pvhold): shutdown: poweroff via SCHEDOP_shutdown"), "\(tern)")
        #expect(out.contains("(d0) Domain 1 has been destroyed"), "\(log)")
        let last = out.split { $0.hasPrefix("(d0) TERN-DOM0-RUN: ") }.last ?? []
        #expect(last.contains { $0.hasPrefix("(d0) Domain-0 ") } && !last.contains { $0.hasPrefix("(d0) dom0less-1 ") }, "\(log)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}
