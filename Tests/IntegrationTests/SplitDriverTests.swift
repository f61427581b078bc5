// Linux's own split drivers between domains on Tern, set up by Xen 4.17's own toolstack: xl's disk
// handling and Debian's hotplug scripts in dom0, xen-blkback there and xen-blkfront in the domU, meeting
// in xenstore and moving data through grants and event channels.
import Foundation
import Testing
import TernTool

extension BootTests {
    /// Boots the toolstack's control domain (2 CPUs) running `commands`, and checks that it powered off
    /// with every command's status 0. Returns the run, dom0's lines, and what to show when an assertion
    /// fails: userspace's last 80 lines, with the kernel's that mention one of `kernelLinesWith`.
    func runControlDomain(_ commands: [String], timeout: TimeInterval, kernelLinesWith words: [String],
                          sourceLocation: SourceLocation = #_sourceLocation) throws -> (RunResult, [String], String) {
        let dom0 = try toolstackDom0(commands: commands)
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: timeout)
        let out = linuxLines(r, 0)
        let log = out.filter { line in !line.contains("] ") || words.contains { line.contains($0) } }.suffix(80).joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))", sourceLocation: sourceLocation)
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: commands.count),
                "\(log)", sourceLocation: sourceLocation)
        return (r, out, log)
    }
}

extension BootTests {
    /// A 16 MiB file in dom0 as a 2-vCPU domU's `disk`: the domU writes two 4 MiB halves of a known
    /// pattern to /dev/xvda at once (flushed) and powers off; dom0 reads the same bytes from the file;
    /// a second 2-vCPU domU reads both halves back at once. Then `xl block-attach` gives the running
    /// domU a copy of the file as xvdb, which it reads, and `xl block-detach` takes it away, which it
    /// sees. Every checksum agrees (and none is that of zeros). Then a third domU is destroyed while it
    /// writes to its disk (in its second 64 MiB): it goes, its memory is released once dom0's backend lets go of
    /// its grants, and dom0 carries on. The hotplug script gave every loop device back.
    @Test func aDiskKeepsItsDataFromOneDomUToTheNext() throws {
        try ToolstackAssets.require()
        let logs = "/var/log/xen/console/guest-disk-write.log /var/log/xen/console/guest-disk-read.log"
        let half = { (skip: Int) in "dd if=/var/lib/tern/disk.img bs=65536 count=64 skip=\(skip) 2>/dev/null | md5sum" }
        let commands = [
            "dd if=/dev/zero of=/var/lib/tern/disk.img bs=1M count=16",
            "xl create /etc/xen/disk-write.cfg", "tern-wait disk-write TERN-DISK:.wrote 120", "tern-gone disk-write",
            half(0), half(64), "cp /var/lib/tern/disk.img /var/lib/tern/disk2.img",
            "xl create /etc/xen/disk-read.cfg", "tern-wait disk-read TERN-DISK:.read 120",
            "xl block-attach disk-read /var/lib/tern/disk2.img,raw,xvdb,rw", "tern-wait disk-read TERN-DISK:.xvdb.read 60",
            "xl block-list disk-read", "xl block-detach disk-read xvdb", "tern-wait disk-read TERN-DISK:.xvdb.gone 60",
            "tern-gone disk-read",
            // A frontend killed mid-I/O: a domU that writes to its disk until it is destroyed, once it
            // has started its second 64 MiB.
            "dd if=/dev/zero of=/var/lib/tern/bench.img bs=1M count=80", "xl create /etc/xen/disk-busy.cfg",
            "tern-wait disk-busy TERN-DISK:.busy.1 120", "xl destroy disk-busy", "tern-gone disk-busy",
            "grep -h TERN-DISK \(logs)", "losetup -a",
        ]
        let (r, out, log) = try runControlDomain(commands, timeout: 300, kernelLinesWith: ["xen", "blk"])
        func sums(after marker: String) -> [String] {
            guard let line = out.first(where: { $0.contains(marker) }), let rest = line.components(separatedBy: marker).last else { return [] }
            return rest.split(separator: " ").map(String.init)
        }
        func printed(by command: String) -> [String] { dom0Printed(out, by: command) }
        func firstWord(by command: String) -> String? { printed(by: command).first?.split(separator: " ").first.map(String.init) }
        let wrote = sums(after: "TERN-DISK: wrote ")
        let inDom0 = [firstWord(by: half(0)), firstWord(by: half(64))].compactMap { $0 }
        let zeros = "b5cfa9d6c8febd618f91ac2843d50a1c"      // md5 of 4 MiB of zeros
        #expect(wrote.count == 2 && wrote[0] != wrote[1] && !wrote.contains(zeros) && wrote.allSatisfy { $0.count == 32 }, "\(log)")
        #expect(inDom0 == wrote, "wrote \(wrote), dom0 saw \(inDom0)\n\(log)")
        #expect(sums(after: "TERN-DISK: read ") == wrote, "\(log)")
        #expect(sums(after: "TERN-DISK: xvdb read ") == wrote, "\(log)")
        #expect(out.contains { $0.contains("TERN-DISK: /dev/xvda has 32768 sectors") }, "\(log)")
        // block-list: Vdev BE handle state evt-ch ring-ref BE-path; both disks connected (state 4).
        let listed = printed(by: "xl block-list disk-read").dropFirst().map { $0.split(separator: " ") }
        #expect(listed.map { $0.count > 3 ? [String($0[0]), String($0[3])] : [] } == [["51712", "4"], ["51728", "4"]], "\(log)")
        #expect(out.contains { $0.contains("TERN-DISK: xvdb gone") }, "\(log)")
        // The frontend killed mid-I/O (d3) never finished, was released, and its memory went back.
        let tern = r.lines.filter { $0.hasPrefix("(tern) d3: ") }
        #expect(tern.contains("(tern) d3: shutdown: destroyed by the control domain"), "\(tern)")
        // Released at once, or kept while the backend still mapped its grants and released after.
        #expect(tern.contains { $0.hasSuffix("released by the control domain") || $0.hasSuffix("memory released") }, "\(tern)")
        #expect(!tern.contains { $0.contains("memory kept") } || tern.last?.hasSuffix("memory released") == true, "\(tern)")
        // losetup -a prints nothing: every loop device was let go.
        #expect(out.contains { $0.hasSuffix("TERN-DOM0-RUN: losetup -a") } && printed(by: "losetup -a") == [], "\(log)")
    }
}

extension BootTests {
    /// Two domUs with a `vif` on dom0's bridge xenbr0: dom0 pings the first and fetches 4 MiB from it
    /// over TCP (HTTP), the second pings the first and fetches the same; every checksum is the
    /// pattern's. Then `xl network-attach` gives the first a second vif, which its netfront connects
    /// (state 4) and the bridge takes in, and `xl network-detach` takes it away again; destroying both
    /// domains leaves the bridge with no ports.
    @Test func domUsOnABridgeReachDom0AndEachOther() throws {
        try ToolstackAssets.require()
        let logs = "/var/log/xen/console/guest-net-serve.log /var/log/xen/console/guest-net-fetch.log"
        let commands = [
            "xl create /etc/xen/net-serve.cfg", "tern-wait net-serve TERN-NET:.serving 120", "ls -1 /sys/class/net/xenbr0/brif",
            "ping -c 3 10.0.0.2", "wget -q -O - http://10.0.0.2/pattern | md5sum",
            "xl create /etc/xen/net-fetch.cfg", "tern-wait net-fetch TERN-NET:.fetched 120", "grep -h TERN-NET \(logs)",
            "xl network-attach net-serve bridge=xenbr0 mac=00:16:3e:00:01:02", "sleep 3", "xl network-list net-serve",
            "ls -1 /sys/class/net/xenbr0/brif", "xl network-detach net-serve 1", "xl network-list net-serve",
            "xl destroy net-fetch", "xl destroy net-serve", "sleep 2", "ls -1 /sys/class/net/xenbr0/brif",
        ]
        let (_, out, log) = try runControlDomain(commands, timeout: 300, kernelLinesWith: ["xen", "vif"])
        func printed(by command: String, _ n: Int = 0) -> [String] { dom0Printed(out, by: command, n) }
        let pattern = "8d55a91d434e1a8fa7b9322ecfa3f70b"     // md5 of `seq 1 700000 | head -c 4194304`
        #expect(printed(by: "ls -1 /sys/class/net/xenbr0/brif") == ["vif1.0"], "\(log)")
        #expect(printed(by: "ping -c 3 10.0.0.2").contains { $0.contains("3 packets transmitted, 3 packets received") }, "\(log)")
        #expect(printed(by: "wget -q -O - http://10.0.0.2/pattern | md5sum") == ["\(pattern)  -"], "\(log)")
        #expect(printed(by: "grep -h TERN-NET \(logs)") == [
            "TERN-NET: eth0 is 10.0.0.2", "TERN-NET: serving \(pattern)",
            "TERN-NET: eth0 is 10.0.0.3", "TERN-NET: ping 10.0.0.2 ok", "TERN-NET: fetched \(pattern)",
        ], "\(log)")
        // network-list: Idx BE Mac Addr. handle state evt-ch tx-/rx-ring-ref BE-path.
        let attached = printed(by: "xl network-list net-serve", 0).dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(attached.map { $0.count > 4 ? [$0[0], $0[2], $0[4]] : $0 } == [["0", "00:16:3e:00:00:02", "4"], ["1", "00:16:3e:00:01:02", "4"]], "\(log)")
        #expect(printed(by: "ls -1 /sys/class/net/xenbr0/brif", 1) == ["vif1.0", "vif1.1", "vif2.0"], "\(log)")
        #expect(printed(by: "xl network-list net-serve", 1).count == 2, "\(log)")
        #expect(printed(by: "ls -1 /sys/class/net/xenbr0/brif", 2) == [], "\(log)")
    }
}

extension BootTests {
    /// `xl mem-set` shrinks a running 192 MiB Linux domU to 96 MiB: its balloon driver gives the pages
    /// back (decrease_reservation), xl list shows 96, and `xl info`'s free memory grows by about as
    /// much (the hypervisor frees each 2 MiB piece of the domU's RAM once all of it is given back).
    /// But not while another domain maps a page of it: dom0 first maps one page of every piece
    /// (tern-foreign keep, a foreign mapping through privcmd), and while it holds them the 96 MiB given
    /// back stay where they are; they are freed once it lets go. Growing it to 192 again
    /// (populate_physmap) takes that memory back; a target above its maximum is refused and changes
    /// nothing.
    @Test func aBalloonGivesMemoryBackAndTakesItAgain() throws {
        try ToolstackAssets.require()
        let commands = [
            "xl create /etc/xen/balloon.cfg", "tern-wait balloon TERN-LINUX-USERSPACE-UP 120", "tern-mem balloon 192",
            // Its RAM is 96 pieces of 2 MiB from gfn 0x40000 (Xen's GUEST_RAM0_BASE).
            "tern-foreign keep $(xl domid balloon) 0x40000 96 0x200",
            "xl mem-set balloon 96", "tern-mem balloon 96 120", "tern-foreign stop", "sleep 1", "tern-mem balloon 96 60",
            "xl mem-set balloon 192", "tern-mem balloon 192 120",
            "xl mem-set balloon 300 2>&1 || echo refused", "xl list balloon", "xl destroy balloon", "tern-settle",
        ]
        let (_, out, log) = try runControlDomain(commands, timeout: 300, kernelLinesWith: ["xen", "balloon"])
        func free(_ command: String) -> Int? {
            dom0Printed(out, by: command).first { $0.hasPrefix("free_memory: ") }.flatMap { Int($0.dropFirst("free_memory: ".count)) }
        }
        let (full, mapped, shrunk, grown) = (free("tern-mem balloon 192"), free("tern-mem balloon 96 120"),
                                             free("tern-mem balloon 96 60"), free("tern-mem balloon 192 120"))
        guard let full, let mapped, let shrunk, let grown else {
            Issue.record("no free memory printed\n\(log)")
            return
        }
        #expect(out.contains { $0.hasSuffix("tern-foreign: d1 gfn 0x40000 and 95 more mapped") }, "\(log)")
        #expect(out.contains { $0.hasPrefix("(d0) tern-foreign: d1 gfn 0x40000 held for ") && $0.hasSuffix(" checks: 96 pages kept") }, "\(log)")
        // Nothing freed while dom0 maps a page of every piece; then 96 MiB given back: all of it but a
        // few 2 MiB pieces the balloon left partly used.
        #expect(mapped - full <= 2, "free \(full) -> \(mapped) MiB while mapped\n\(log)")
        #expect(shrunk - full >= 88 && shrunk - full <= 96, "free \(full) -> \(mapped) -> \(shrunk) MiB\n\(log)")
        #expect(shrunk - grown >= 88 && abs(grown - full) <= 8, "free \(full) -> \(shrunk) -> \(grown) MiB\n\(log)")
        #expect(dom0Printed(out, by: "xl mem-set balloon 300 2>&1 || echo refused").last == "refused", "\(log)")
        let listed = dom0Printed(out, by: "xl list balloon").dropFirst().first?.split(separator: " ").map(String.init)
        #expect(listed.map { $0.count > 2 ? $0[2] : "" } == "192", "\(log)")
    }
}

extension BootTests {
    /// The disk backend in a driver domain, not dom0: a domU with `driver_domain = 1` runs xen-blkback
    /// and `xl devd`, and serves on the disk dom0 gives it (so its data outlives it). A domU whose
    /// config says `backend=driver` writes a pattern through it and powers off; a second reads it back.
    /// Destroying the driver domain leaves dom0 and that second domU running; `xl block-detach -f` of
    /// the dead backend's disk takes xvda away in the domU (its frontend lets go), a new driver domain
    /// serves the disk again, and `xl block-attach ... backend=driver,vdev=xvda` gives the running domU
    /// its xvda back, with the same pattern on it. Then the driver domain dies in the middle of a third domU's disk I/O:
    /// dom0 and that domU carry on (its I/O waits), and destroying it releases its memory.
    @Test func aDriverDomainServesDisksAndMayBeRestarted() throws {
        try ToolstackAssets.require()
        let logs = "/var/log/xen/console/guest-disk-remote-write.log /var/log/xen/console/guest-disk-remote-read.log"
        let busy = "grep -c TERN-DISK:.busy /var/log/xen/console/guest-disk-remote-busy.log"
        let commands = [
            "dd if=/dev/zero of=/var/lib/tern/disk.img bs=1M count=80",
            "xl create /etc/xen/driver.cfg", "tern-wait driver TERN-DRIVER:.serving 120",
            "xl create /etc/xen/disk-remote-write.cfg", "tern-wait disk-remote-write TERN-DISK:.wrote 120",
            "tern-gone disk-remote-write",
            "xl create /etc/xen/disk-remote-read.cfg", "tern-wait disk-remote-read TERN-DISK:.read 120",
            "xl destroy driver", "tern-gone driver", "sleep 2", "xl list disk-remote-read",
            "xl block-detach -f disk-remote-read xvda", "tern-wait disk-remote-read TERN-DISK:.xvda.gone 60",
            // xenconsoled appends to a name's log: the new driver domain's lines must be its own.
            "rm /var/log/xen/console/guest-driver.log",
            "xl create /etc/xen/driver.cfg", "tern-wait driver TERN-DRIVER:.serving 120",
            "xl block-attach disk-remote-read backend=driver,format=raw,vdev=xvda,access=rw,target=/dev/xvda",
            "tern-wait disk-remote-read TERN-DISK:.xvda.back 120", "xl block-list disk-remote-read",
            "grep -h TERN-DISK \(logs)", "grep -h -i error \(logs) || true",
            "xl destroy disk-remote-read", "tern-gone disk-remote-read",
            // The backend dies mid-I/O: the third domU is writing to its disk, and has started its
            // second 64 MiB. What it has said is counted once the driver domain has gone and again
            // later: nothing more (its I/O waits).
            "xl create /etc/xen/disk-remote-busy.cfg", "tern-wait disk-remote-busy TERN-DISK:.busy.1 120",
            "xl destroy driver", "tern-gone driver", busy, "sleep 3", "xl list disk-remote-busy", busy,
            "xl destroy disk-remote-busy", "tern-gone disk-remote-busy", "tern-settle",
        ]
        let (r, out, log) = try runControlDomain(commands, timeout: 400, kernelLinesWith: ["xen", "blk"])
        let printed = dom0Printed(out, by: "grep -h TERN-DISK \(logs)")
        func sums(after marker: String) -> [String] {
            guard let line = printed.first(where: { $0.contains(marker) }), let rest = line.components(separatedBy: marker).last else { return [] }
            return rest.split(separator: " ").map(String.init)
        }
        let wrote = sums(after: "TERN-DISK: wrote ")
        #expect(wrote.count == 2 && wrote[0] != wrote[1] && wrote.allSatisfy { $0.count == 32 }, "\(log)")
        #expect(sums(after: "TERN-DISK: read ") == wrote, "\(log)")
        // The reader outlived the driver domain (still listed after it was destroyed), let go of its
        // disk when the toolstack took it away, and read the same pattern from the new driver domain.
        #expect(dom0Printed(out, by: "xl list disk-remote-read").dropFirst().first?.hasPrefix("disk-remote-read ") == true, "\(log)")
        #expect(printed.contains("TERN-DISK: xvda gone"), "\(log)")
        #expect(sums(after: "TERN-DISK: xvda back ") == wrote, "\(log)")
        // block-list: Vdev BE handle state ...: xvda (51712) served by the second driver domain (d4), connected.
        let listed = dom0Printed(out, by: "xl block-list disk-remote-read").dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(listed.map { $0.count > 3 ? [$0[0], $0[1], $0[3]] : $0 } == [["51712", "4", "4"]], "\(log)")
        // Both driver domains (d1 and d4; the writer is d2, the reader d3, the third domU d5) went, and
        // their memory came back once dom0's backend for their own disk let go of its grants; so did the
        // third domU's, whose grants the second driver domain mapped when it died.
        for d in ["d1", "d4", "d5"] {
            let tern = r.lines.filter { $0.hasPrefix("(tern) \(d): ") }
            #expect(tern.contains("(tern) \(d): shutdown: destroyed by the control domain"), "\(tern)")
            #expect(tern.last?.hasSuffix("memory released") == true, "\(tern)")
        }
        // The third domU outlived its backend, and its I/O made no progress after the backend died.
        #expect(dom0Printed(out, by: "xl list disk-remote-busy").dropFirst().first?.hasPrefix("disk-remote-busy ") == true, "\(log)")
        let counts = [0, 1].map { dom0Printed(out, by: busy, $0).first.flatMap { Int($0) } }
        #expect(counts[0] != nil && counts[0]! >= 2 && counts[0] == counts[1], "\(counts)\n\(log)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}

extension BootTests {
    /// The network backend in a driver domain: two domUs whose vifs say `backend=driver` join the driver
    /// domain's bridge (its xl devd runs vif-bridge there), ping each other and move 4 MiB over TCP with
    /// the pattern's checksum; dom0 has no part in their traffic.
    @Test func aDriverDomainBridgesDomUs() throws {
        try ToolstackAssets.require()
        let commands = [
            "dd if=/dev/zero of=/var/lib/tern/disk.img bs=1M count=16",
            "xl create /etc/xen/driver.cfg", "tern-wait driver TERN-DRIVER:.serving 120",
            "xl create /etc/xen/net-remote-serve.cfg", "tern-wait net-remote-serve TERN-NET:.serving 120",
            "xl create /etc/xen/net-remote-fetch.cfg", "tern-wait net-remote-fetch TERN-NET:.fetched 120",
            "grep -h TERN-NET /var/log/xen/console/guest-net-remote-serve.log /var/log/xen/console/guest-net-remote-fetch.log",
            "xl network-list net-remote-fetch", "ls /sys/class/net",
            "xl destroy net-remote-fetch", "xl destroy net-remote-serve", "xl destroy driver", "tern-gone driver",
        ]
        let (_, out, log) = try runControlDomain(commands, timeout: 300, kernelLinesWith: ["xen", "vif"])
        let pattern = "8d55a91d434e1a8fa7b9322ecfa3f70b"     // md5 of `seq 1 700000 | head -c 4194304`
        #expect(dom0Printed(out, by: "grep -h TERN-NET /var/log/xen/console/guest-net-remote-serve.log /var/log/xen/console/guest-net-remote-fetch.log") == [
            "TERN-NET: eth0 is 10.0.1.2", "TERN-NET: serving \(pattern)",
            "TERN-NET: eth0 is 10.0.1.3", "TERN-NET: ping 10.0.1.2 ok", "TERN-NET: fetched \(pattern)",
        ], "\(log)")
        // network-list: Idx BE Mac Addr. handle state ...: backend domain 1 (the driver), connected (4).
        let listed = dom0Printed(out, by: "xl network-list net-remote-fetch").dropFirst().map { $0.split(separator: " ").map(String.init) }
        #expect(listed.map { $0.count > 4 ? [$0[0], $0[1], $0[2], $0[4]] : $0 } == [["0", "1", "00:16:3e:00:02:03", "4"]], "\(log)")
        // dom0 has no vif of theirs: its only interfaces are its own.
        #expect(!dom0Printed(out, by: "ls /sys/class/net").joined(separator: " ").contains("vif"), "\(log)")
    }
}
