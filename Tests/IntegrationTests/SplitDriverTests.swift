// Linux's own split drivers between domains on Tern, set up by Xen 4.17's own toolstack: xl's disk
// handling and Debian's hotplug scripts in dom0, xen-blkback there and xen-blkfront in the domU, meeting
// in xenstore and moving data through grants and event channels.
import Foundation
import Testing
import TernTool

extension BootTests {
    /// A 16 MiB file in dom0 as a domU's `disk`: the domU writes 4 MiB of a known pattern to /dev/xvda
    /// (flushed) and powers off; dom0 reads the same bytes from the file; a second domU reads them
    /// back from its own /dev/xvda. The three checksums agree (and are not those of zeros), and the
    /// hotplug script gave its loop device back when each domain went.
    @Test func aDiskKeepsItsDataFromOneDomUToTheNext() throws {
        try ToolstackAssets.require()
        let logs = "/var/log/xen/console/guest-disk-write.log /var/log/xen/console/guest-disk-read.log"
        let commands = [
            "dd if=/dev/zero of=/var/lib/tern/disk.img bs=1M count=16",
            "xl create /etc/xen/disk-write.cfg", "tern-wait disk-write TERN-DISK:.wrote 120", "tern-gone disk-write",
            "head -c 4194304 /var/lib/tern/disk.img | md5sum",
            "xl create /etc/xen/disk-read.cfg", "tern-wait disk-read TERN-DISK:.read 120", "tern-gone disk-read",
            "grep -h TERN-DISK \(logs)", "losetup -a",
        ]
        let dom0 = try toolstackDom0(commands: commands)
        defer { try? FileManager.default.removeItem(at: dom0) }
        let r = try runner.run(configs: [dom0], smp: 2, timeout: 300)
        let out = linuxLines(r, 0)
        let log = out.filter { !$0.contains("] ") || $0.contains("xen") || $0.contains("blk") }.suffix(80).joined(separator: "\n")
        #expect(r.allPoweredOff, "\(r.lines.suffix(30).joined(separator: "\n"))")
        #expect(out.filter { $0.hasPrefix("(d0) TERN-DOM0-STATUS: ") } == Array(repeating: "(d0) TERN-DOM0-STATUS: 0", count: commands.count), "\(log)")
        func sum(after marker: String) -> String? {
            guard let line = out.first(where: { $0.contains(marker) }),
                  let word = line.components(separatedBy: marker).last?.split(separator: " ").first else { return nil }
            return String(word)
        }
        let wrote = sum(after: "TERN-DISK: wrote "), read = sum(after: "TERN-DISK: read ")
        let inDom0 = out.firstIndex { $0.hasSuffix("TERN-DOM0-RUN: head -c 4194304 /var/lib/tern/disk.img | md5sum") }
            .flatMap { out[$0 + 1].split(separator: " ").dropFirst().first.map(String.init) }
        let zeros = "b5cfa9d6c8febd618f91ac2843d50a1c"      // md5 of 4 MiB of zeros
        #expect(wrote != nil && wrote != zeros && wrote?.count == 32, "\(log)")
        #expect(inDom0 == wrote && read == wrote, "wrote \(wrote ?? "-"), dom0 saw \(inDom0 ?? "-"), read \(read ?? "-")\n\(log)")
        #expect(out.contains { $0.contains("TERN-DISK: /dev/xvda has 32768 sectors") }, "\(log)")
        // losetup -a prints nothing: both loop devices were let go.
        let losetup = out.firstIndex { $0.hasSuffix("TERN-DOM0-RUN: losetup -a") }
        #expect(losetup.map { out[$0 + 1] } == "(d0) TERN-DOM0-STATUS: 0", "\(log)")
    }
}
