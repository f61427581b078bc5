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
}
