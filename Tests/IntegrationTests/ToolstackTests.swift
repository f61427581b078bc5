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
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let script = Process()
        script.executableURL = root.appendingPathComponent("scripts/fetch-toolstack.sh")
        script.currentDirectoryURL = root
        try script.run()
        script.waitUntilExit()
        guard script.terminationStatus == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [NSLocalizedDescriptionKey: "scripts/fetch-toolstack.sh failed"])
        }
    }

    static func require() throws { try ready.get() }
}

extension BootTests {
    /// dom0's toolstack starts as on Xen (xenstored, xen-init-dom0 naming Domain-0 in xenstore,
    /// xenconsoled), then `xl info` describes the machine from sysctl physinfo, sched_id, cputopoinfo,
    /// numainfo and cpupool_op, and `xl list` lists both domains from getdomaininfolist: dom0 running
    /// with its 512 MiB and 2 vCPUs, and a sleeping domU (not yet named: that needs init-dom0less);
    /// `xl dmesg` reads Tern's console history (sysctl readconsole), without dom0's own lines, as on Xen.
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
        #expect(Array(fields.dropFirst().prefix(5)) == ["Domain-0", "0", "512", "2", "r-----"], "\(dom0)")
        let domU = try #require(out.first { $0.hasPrefix("(d0) (null) ") }, "\(log)")
        let columns = domU.replacingOccurrences(of: "\t", with: " ").split(separator: " ").map(String.init)
        #expect(Array(columns.dropFirst().prefix(5)) == ["(null)", "1", "32", "1", "-b----"], "\(domU)")
        // xl dmesg: Tern's lines as it printed them, and the domU's; none of dom0's.
        let dmesg = out.drop { $0 != "(d0) TERN-DOM0-RUN: xl dmesg" }
        #expect(dmesg.contains { $0.hasPrefix("(d0) (tern) Tern 0.1.0 hypervisor (Xen 4.17 guest ABI) at EL2") }, "\(log)")
        #expect(dmesg.contains { $0.hasPrefix("(d0) (tern) boot done in ") && $0.contains(": 2 domains, 2 pcpus") })
        #expect(!dmesg.contains { $0.hasPrefix("(d0) (d0) ") })
        // Every command ran to its end and said so.
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: 3), "\(log)")
        #expect(!r.lines.contains { $0.contains("HYPERVISOR FAULT") })
    }
}
