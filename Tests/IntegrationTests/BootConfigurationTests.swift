// What the hypervisor does with a boot configuration no config file can express (a hand-written or
// damaged boot device tree): the runner's editBootTree changes the tree Tern wrote.
import Foundation
import Testing
import TernCore
import TernTool

extension BootTests {
    func run(_ configs: [String], editing edit: @escaping @Sendable (DTNode) -> Void,
             stopWhen: (@Sendable (String) -> Bool)? = nil) throws -> RunResult {
        var options = RunOptions(smp: 1, timeout: 60, stopWhen: stopWhen)
        options.editBootTree = edit
        return try runner.run(configs: configs.map(example), options: options, onLine: { _ in })
    }

    /// A domain's ID is the configuration's, whatever it is below DOMID_FIRST_RESERVED: it names the
    /// domain on the console and is unrelated to the slot the domain takes.
    @Test func aBootDomainMayHaveAnyUnreservedID() throws {
        let r = try run(["hello", "hello-psci"], editing: { root in
            root.child("chosen")?.child("domU1")?.set("tern,domid", u32: 0x7FEF)
        })
        let log = r.lines.filter { !$0.isEmpty }.suffix(20).joined(separator: "\n")
        #expect(r.lines.contains { $0.hasPrefix("(d32751) hello:") && $0.contains("done, powering off") }, "\(log)")
        #expect(r.lines.contains { $0.hasPrefix("(tern) d32751 (hello-psci): shutdown: poweroff") }, "\(log)")
        #expect(r.lines.contains { $0.hasPrefix("(tern) d0 (hello): shutdown: poweroff") }, "\(log)")
    }

    /// Two domains with one ID would each get the other's events and grants, and an ID from Xen's
    /// reserved range (DOMID_SELF and up) names no domain: either way nothing starts, and Tern says why.
    @Test func aRepeatedOrReservedDomainIDStartsNothing() throws {
        let refused: @Sendable (String) -> Bool = { $0.contains("none started") }
        let repeated = try run(["hello", "hello-psci"], editing: { root in
            root.child("chosen")?.child("domU1")?.set("tern,domid", u32: 0)
        }, stopWhen: refused)
        #expect(repeated.lines.contains("(tern) the boot configuration gives domain nodes domU0 and domU1 the same ID 0: none started"),
                "\(repeated.lines.suffix(10).joined(separator: "\n"))")
        #expect(!repeated.lines.contains { $0.hasPrefix("(d0)") || $0.hasPrefix("(d1)") })
        let reserved = try run(["hello", "hello-psci"], editing: { root in
            root.child("chosen")?.child("domU1")?.set("tern,domid", u32: 0x1_0001)
        }, stopWhen: refused)
        #expect(reserved.lines.contains("(tern) the boot configuration gives domain node domU1 ID 65537, which is not below Xen's DOMID_FIRST_RESERVED (32752): none started"),
                "\(reserved.lines.suffix(10).joined(separator: "\n"))")
        #expect(!reserved.lines.contains { $0.hasPrefix("(d0)") || $0.hasPrefix("(d1)") })
    }

    /// Each live domain needs its own VMID, and QEMU's Cortex-A57 has 8-bit ones: a boot configuration
    /// of 256 domains (which no set of configs can ask for: the tool refuses it first) starts nothing.
    @Test func moreDomainsThanVMIDsStartNothing() throws {
        let r = try run(["hello", "hello-psci"], editing: { root in
            guard let chosen = root.child("chosen"), let node = chosen.child("domU1") else { return }
            for id in 2 ..< 256 {
                let copy = DTNode(name: Array("domU\(id)".utf8), properties: node.properties, children: node.children)
                copy.set("tern,domid", u32: UInt32(id))
                chosen.addChild(copy)
            }
        }, stopWhen: { $0.contains("none started") })
        #expect(r.lines.contains("(tern) the boot configuration asks for 256 domains; this CPU's 8-bit VMIDs tell at most 255 apart: none started"),
                "\(r.lines.suffix(10).joined(separator: "\n"))")
        #expect(!r.lines.contains { $0.hasPrefix("(d0)") || $0.hasPrefix("(d1)") })
    }
}
