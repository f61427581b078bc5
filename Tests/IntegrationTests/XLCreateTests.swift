// `xl create` with Xen 4.17's own toolstack from Debian in a Linux dom0 on Tern: libxl builds Linux
// domUs (Debian's kernel, Tern's initramfs) through domctl, memory_op and foreign mappings, xenstored
// and xenconsoled connect to them through their reserved grants, and each reaches userspace. What the
// domUs print is read from xenconsoled's logs inside dom0.
import Foundation
import Testing
import TernTool

extension BootTests {
    /// A 1-vCPU and a 2-vCPU domU from /etc/xen/domu{1,2}.cfg: both print their userspace marker on the
    /// console xenconsoled serves, `xl list` shows them with their memory and vCPUs, domu2 sees two CPUs
    /// and powers itself off (xl's own watcher then destroys it, as on_poweroff says), `xl destroy`
    /// ends domu1, and the machine's free memory is what it was before.
    @Test func xlCreatesLinuxDomUsThatReachUserspace() throws {
        try ToolstackAssets.require()
        let log1 = "/var/log/xen/console/guest-domu1.log", log2 = "/var/log/xen/console/guest-domu2.log"
        let dom0 = try toolstackDom0(commands: [
            "xl info", "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-DONE", "xl list",
            "xl create /etc/xen/domu2.cfg", "tern-wait domu2 TERN-LINUX-DONE", "sleep 5", "xl list",
            "cat \(log1)", "cat \(log2)", "xl destroy domu1", "sleep 3", "xl list", "xl info",
            "rm \(log1)", "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-DONE", "xl destroy domu1", "sleep 3", "xl info",
        ])
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: 240)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(80).joined(separator: "\n")
        let tern = r.lines.filter { $0.hasPrefix("(tern) ") }.joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 20), "\(log)")
        // Each command's output, by the command.
        var sections: [(String, [String])] = []
        for line in out {
            if line.hasPrefix("(d0) TERN-DOM0-RUN: ") { sections.append((String(line.dropFirst(20)), [])) }
            else if !sections.isEmpty { sections[sections.count - 1].1.append(line) }
        }
        func listing(_ n: Int) -> [[String]] {
            let lists: [[String]] = sections.filter { $0.0 == "xl list" }.map { $0.1 }
            guard n < lists.count else { return [] }
            var rows: [[String]] = []
            for line in lists[n] {
                let columns: [String] = line.replacingOccurrences(of: "\t", with: " ").split(separator: " ").dropFirst().map(String.init)
                if columns.count == 6 && columns[0] != "Name" { rows.append(columns) }
            }
            return rows
        }
        // Running, with its 128 MiB and its vCPUs (r: on a CPU, b: waiting).
        let first = listing(0)
        let named: [[String]] = first.map { [$0[0], $0[1], $0[3]] }
        #expect(named == [["Domain-0", "0", "2"], ["domu1", "1", "1"]], "\(log)")
        #expect(first.last?[2] == "128", "\(first)")
        #expect(first.last.map { ["r-----", "-b----"].contains($0[4]) } == true, "\(first)")
        // domu2 came and went: its own poweroff, then xl's watcher destroyed it.
        #expect(!listing(1).contains { $0[0] == "domu2" } && listing(1).contains { $0[0] == "domu1" }, "\(listing(1))")
        #expect(tern.contains("(tern) d2: shutdown: poweroff via SCHEDOP_shutdown (preserved)"), "\(tern)")
        #expect(tern.contains("(tern) d2: released by the control domain"), "\(tern)")
        // Both reached userspace on the console xenconsoled serves, domu2 with both its vCPUs.
        let console1 = sections.first { $0.0 == "cat \(log1)" }?.1 ?? []
        let console2 = sections.first { $0.0 == "cat \(log2)" }?.1 ?? []
        #expect(console1.contains("(d0) TERN-LINUX-USERSPACE-UP") && console1.contains("(d0) console: hvc0"), "\(console1)")
        #expect(console1.contains("(d0) cpus online: 0"), "\(console1)")
        #expect(console2.contains("(d0) TERN-LINUX-USERSPACE-UP") && console2.contains("(d0) cpus online: 0-1"), "\(console2)")
        #expect(console2.contains("(d0) hypervisor version/extra: -tern"), "\(console2)")
        // xl destroy: Tern says so, and once xenstored and xenconsoled let go of its pages (they hear of
        // it by VIRQ_DOM_EXC) the domain is gone and its memory back.
        #expect(tern.contains("(tern) d1: shutdown: destroyed by the control domain"), "\(tern)")
        #expect(!listing(2).contains { $0[0] != "Domain-0" }, "\(listing(2))")
        // Free memory (MiB): the first domain may leave the hypervisor's heap one 4 MiB region larger (it
        // keeps what it grew by); after that a domain built and destroyed gives back all it took.
        let free = sections.filter { $0.0 == "xl info" }.compactMap { $0.1.first { $0.hasPrefix("(d0) free_memory ") } }
            .compactMap { Int($0.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") }
        #expect(free.count == 3, "\(log)")
        if free.count == 3 {
            #expect(free[0] - free[1] >= 0 && free[0] - free[1] <= 4, "\(free)\n\(tern)")
            #expect(free[1] == free[2], "\(free)\n\(tern)")
        }
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}

extension BootTests {
    /// The rest of a created domU's life under xl: `xl vcpu-pin` moves its vCPU (domctl setvcpuaffinity,
    /// shown by `xl vcpu-list`), `xl reboot` asks the guest through xenstore and xl's watcher builds it
    /// again (on_reboot = restart: a new domain, same name, back in userspace), `xl shutdown -w` asks it
    /// to power off and waits, and the watcher destroys it.
    @Test func xlPinsRebootsAndShutsDownADomU() throws {
        try ToolstackAssets.require()
        let log1 = "/var/log/xen/console/guest-domu1.log"
        let dom0 = try toolstackDom0(commands: [
            "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-DONE", "xl vcpu-pin domu1 0 1", "xl vcpu-list domu1",
            "rm \(log1)", "xl reboot domu1", "tern-wait domu1 TERN-LINUX-DONE", "xl list",
            "xl shutdown -w domu1", "sleep 2", "xl list",
        ])
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: 240)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        let tern = r.lines.filter { $0.hasPrefix("(tern) ") }.joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 11), "\(log)")
        // vcpu-list: Name ID VCPU CPU State Time Affinity (hard / soft): pinned to CPU 1, and there.
        let row = out.first { $0.hasPrefix("(d0) domu1 ") && $0.contains(" / ") }?
            .split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        #expect(row.map { [$0[3], $0[4]] + $0.suffix(3) } == ["0", "1", "1", "/", "all"], "\(log)")
        // The reboot: the guest was asked, Tern saw it, xl built a new domain under the same name.
        #expect(tern.contains("(tern) d1: shutdown: reboot via SCHEDOP_shutdown (preserved)"), "\(tern)")
        #expect(tern.contains("(tern) d2: created by the control domain, 1 vcpu"), "\(tern)")
        let listed = out.first { $0.hasPrefix("(d0) domu1 ") && !$0.contains(" / ") }?
            .replacingOccurrences(of: "\t", with: " ").split(separator: " ").map(String.init)
        #expect(listed.map { [$0[1], $0[2]] } == ["domu1", "2"], "\(log)")
        // The shutdown: asked, powered off, destroyed by xl's watcher, gone.
        #expect(tern.contains("(tern) d2: shutdown: poweroff via SCHEDOP_shutdown (preserved)"), "\(tern)")
        #expect(tern.contains("(tern) d2: released by the control domain"), "\(tern)")
        let last = out.split { $0.hasPrefix("(d0) TERN-DOM0-RUN: ") }.last ?? []
        #expect(last.contains { $0.hasPrefix("(d0) Domain-0 ") } && !last.contains { $0.hasPrefix("(d0) domu1 ") }, "\(log)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}

extension BootTests {
    /// A foreign mapping outlives the domain it maps: dom0 (tern-foreign, through Linux's privcmd) maps
    /// the first page of a paused domU's kernel and writes a pattern there; `xl destroy` leaves the
    /// domain dying but its memory kept; a new domU is built and boots meanwhile, and the page still
    /// holds the pattern (the frame was not handed on); unmapping lets the dead domain go and the free
    /// memory returns. Then `xl create`/`xl destroy` 20 times over: the free memory comes back each
    /// time, and nothing stays mapped.
    @Test func aForeignMappingOutlivesItsDomainAndCreateDestroyLoops() throws {
        try ToolstackAssets.require()
        let loop = "for i in $(seq 20); do xl create -p /etc/xen/domu1.cfg >/dev/null 2>&1 || exit 1; "
            + "xl destroy domu1 || exit 1; tern-settle || exit 1; done"
        let dom0 = try toolstackDom0(commands: [
            "tern-settle", "xl create -p /etc/xen/domu1.cfg", "tern-foreign hold 1 0x40000", "xl destroy domu1",
            "xl debug-keys m", "xl create /etc/xen/domu1.cfg", "tern-wait domu1 TERN-LINUX-DONE", "tern-foreign stop",
            "xl destroy domu1", "tern-settle", "xl debug-keys m", loop, "xl debug-keys m",
        ])
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: 400)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        let tern = r.lines.filter { $0.hasPrefix("(tern) ") }.joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 13), "\(log)")
        // dom0 saw the domU's kernel (an arm64 Image's magic) through the mapping, then wrote over it.
        #expect(out.contains("(d0) tern-foreign: d1 gfn 0x40000 mapped, bytes at 0x38: ARMd; pattern written"), "\(log)")
        // Destroyed but held: dying, its 128 MiB still its own, dom0 mapping one of its pages.
        #expect(r.lines.contains("(tern) d1: 131072 KiB, dying, maps 0 foreign pages"), "\(tern)")
        #expect(r.lines.contains("(tern) d0 (xl-dom0): 524288 KiB, maps 1 foreign pages"), "\(tern)")
        #expect(tern.contains("(tern) d1: memory kept while others hold it ("), "\(tern)")
        // The next domain was built and booted while the page was held, and did not get that frame.
        #expect(out.contains { $0.hasPrefix("(d0) tern-foreign: d1 gfn 0x40000 held for ") && $0.hasSuffix(" checks: pattern intact") }, "\(log)")
        func index(_ line: String) -> Int? { r.lines.firstIndex(of: line) }
        let created = index("(tern) d2: created by the control domain, 1 vcpu")
        let stop = index("(d0) TERN-DOM0-RUN: tern-foreign stop")
        let released = index("(tern) d1: no longer held; memory released")
        #expect(created != nil && stop != nil && released != nil, "\(tern)")
        if let created, let stop, let released { #expect(created < stop && stop < released, "\(tern)") }
        // The loop: 20 more domains, each destroyed and released.
        #expect(r.lines.contains("(tern) d22: created by the control domain, 1 vcpu"), "\(tern)")
        #expect(r.lines.contains("(tern) d22: its grants are no longer mapped; memory released"), "\(tern)")
        // Free memory (MiB) at the start, after the held domain went, and after each round: the
        // hypervisor's heap may grow once by a 4 MiB region and keep it; nothing else is lost.
        let prefix = "(d0) free_memory: "
        let free = out.compactMap { $0.hasPrefix(prefix) ? Int($0.dropFirst(prefix.count)) : nil }
        #expect(free.count == 22, "\(log)")
        if let first = free.first {
            #expect(free.allSatisfy { $0 <= first && first - $0 <= 4 }, "\(free)")
            #expect(Set(free.suffix(10)).count == 1, "\(free)")
        }
        // Nothing stays mapped: dom0 maps no foreign page, and no other domain is left.
        let dumps = r.lines.split { $0 == "(d0) TERN-DOM0-RUN: xl debug-keys m" }.dropFirst()
        let last = dumps.last?.prefix { !$0.hasPrefix("(tern) memory: ") }.filter { $0.hasPrefix("(tern) d") } ?? []
        #expect(Array(last) == ["(tern) d0 (xl-dom0): 524288 KiB, maps 0 foreign pages"], "\(last)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}

extension BootTests {
    /// `xl sched-credit2 -w` changes a created domU's share, as the guests measure it: two busy domUs
    /// on one CPU (cpus = "1"; dom0 pinned to the other) count their rounds per 2 s of their uptime
    /// (which runs on while they wait, so the count is their share). With equal weights they get about as much; with 512 against 256, the first gets about
    /// twice the second. Meanwhile each stays on the CPU its affinity names.
    @Test func aWeightSetWithXlChangesTheShareTheGuestsMeasure() throws {
        try ToolstackAssets.require()
        let log1 = "/var/log/xen/console/guest-spin1.log", log2 = "/var/log/xen/console/guest-spin2.log"
        let dom0 = try toolstackDom0(commands: [
            "xl vcpu-pin 0 all 0", "xl create /etc/xen/spin1.cfg", "xl create /etc/xen/spin2.cfg",
            "tern-wait spin1 TERN-SPIN", "tern-wait spin2 TERN-SPIN", "sleep 8",
            "echo PHASE-B | tee -a \(log1) \(log2)", "xl sched-credit2 -d spin1 -w 512", "sleep 10", "xl sched-credit2", "xl vcpu-list",
            "grep -h -e SPIN -e PHASE \(log1)", "grep -h -e SPIN -e PHASE \(log2)", "xl destroy spin1", "xl destroy spin2",
        ])
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: 300)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") }.suffix(60).joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 15), "\(log)")
        // Under load, each busy vCPU is on the one CPU its config allows (cpus = "1"), and dom0's on
        // the other (pinned by xl vcpu-pin): Name ID VCPU CPU State Time Affinity.
        let placed = out.drop { $0 != "(d0) TERN-DOM0-RUN: xl vcpu-list" }
            .map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            .filter { $0.count >= 10 && ["Domain-0", "spin1", "spin2"].contains($0[1]) }
            .map { [$0[1], $0[4], $0[7]] }
        #expect(placed == [["Domain-0", "0", "0"], ["Domain-0", "0", "0"], ["spin1", "1", "1"], ["spin2", "1", "1"]], "\(log)")
        #expect(out.contains { $0.hasPrefix("(d0) spin1 ") && $0.split(separator: " ").suffix(2) == ["512", "0"] }, "\(log)")
        // Each guest's counts, before and after the reweighing.
        func counts(_ command: String) -> (before: [Double], after: [Double]) {
            let lines = out.drop { $0 != "(d0) TERN-DOM0-RUN: \(command)" }.dropFirst()
                .prefix { !$0.hasPrefix("(d0) TERN-DOM0-STATUS: ") }
            let split = lines.split(separator: "(d0) PHASE-B", maxSplits: 1, omittingEmptySubsequences: false)
            func numbers(_ part: ArraySlice<String>?) -> [Double] {
                (part ?? []).compactMap { $0.hasPrefix("(d0) TERN-SPIN: ") ? Double($0.dropFirst(16)) : nil }
            }
            return (numbers(split.first), numbers(split.count > 1 ? split[1] : nil))
        }
        let a = counts("grep -h -e SPIN -e PHASE \(log1)"), b = counts("grep -h -e SPIN -e PHASE \(log2)")
        // Before: the last 3 windows, when both were busy. After: all but the first (the change falls in it).
        #expect(a.before.count >= 3 && b.before.count >= 3 && a.after.count >= 4 && b.after.count >= 4, "\(a) \(b)")
        guard a.before.count >= 3, b.before.count >= 3, a.after.count >= 4, b.after.count >= 4 else { return }
        // Rounds per window, averaged: the two may have ended different numbers of windows.
        func mean(_ x: ArraySlice<Double>) -> Double { x.reduce(0, +) / Double(max(x.count, 1)) }
        let equal = mean(a.before.suffix(3)) / max(mean(b.before.suffix(3)), 1)
        let weighted = mean(a.after.dropFirst()) / max(mean(b.after.dropFirst()), 1)
        #expect(equal > 0.6 && equal < 1.6, "equal weights: \(equal) \(a) \(b)")
        #expect(weighted > 1.4 && weighted < 3.2, "512 against 256: \(weighted) \(a) \(b)")
        #expect(weighted > 1.3 * equal, "\(equal) -> \(weighted)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}
