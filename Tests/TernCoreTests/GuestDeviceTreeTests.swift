import Testing
import TernCore

struct GuestDeviceTreeTests {
    func build(_ m: GuestMachine) throws -> DTNode {
        try GuestDeviceTree.build(m).withUnsafeBytes { try FlattenedDeviceTree.parse($0) }
    }

    @Test func plainMachineHasNoXenUARTOrClock() throws {
        let root = try build(GuestMachine(memory: [(GuestLayout.ram, 64 << 20)], vcpus: 2, bootargs: Array("quiet".utf8)))
        #expect(root.node(atPath: "/chosen")?.property("bootargs")?.string == Array("quiet".utf8))
        #expect(root.node(atPathText: "/cpus/cpu@1")?.property("enable-method")?.string == Array("psci".utf8))
        #expect(root.findCompatible("xen,xen").isEmpty && root.findCompatible("arm,sbsa-uart").isEmpty)
        #expect(root.findCompatible("arm,pl031").isEmpty)
    }

    @Test func controlDomainGetsTheRTCWithItsBusClock() throws {
        let rtc = GuestPhysicalAddress(0x0901_0000)
        let root = try build(GuestMachine(memory: [(GuestLayout.ram, 64 << 20)], vcpus: 1, bootargs: [], xen: true,
                                          rtc: rtc))
        let node = try #require(root.findCompatible("arm,pl031").first)
        #expect(node.name == Array("pl031@9010000".utf8))
        #expect(node.isCompatible("arm,primecell"))
        #expect(node.reg(in: root).first.map { $0.address == rtc.raw && $0.size == 0x1000 } == true)
        #expect(node.property("clock-names")?.string == Array("apb_pclk".utf8))
        // The clock it names is a fixed clock in the same tree.
        let clock = try #require(root.findCompatible("fixed-clock").first)
        #expect(node.property("clocks")?.u32 == clock.property("phandle")?.u32)
        #expect(clock.property("#clock-cells")?.u32 == 0)
        #expect(root.findCompatible("xen,xen").count == 1)
    }

    /// The hypervisor node's reg: the grant-table window, then Xen's extended regions, the rest of RAM
    /// bank 0 after the domain's RAM (2 MiB up) and RAM bank 1 as far as a 39-bit stage 2 reaches.
    @Test func theHypervisorNodeNamesTheExtendedRegions() throws {
        let root = try build(GuestMachine(memory: [(GuestLayout.ram, 512 << 20)], vcpus: 1, bootargs: [], xen: true))
        let node = try #require(root.findCompatible("xen,xen").first)
        let reg = node.reg(in: root).map { [$0.address, $0.size] }
        #expect(reg == [[0x3800_0000, 0x100_0000], [0x6000_0000, 0xA000_0000], [0x2_0000_0000, 0x7E_0000_0000]])
        // RAM that is not a 2 MiB multiple leaves the rest of its 2 MiB out; a bank nearly full has no
        // region (under 64 MiB).
        let odd = GuestDeviceTree.extendedRegions(ram: [(GuestLayout.ram, (128 << 20) + 4096)]).map { [$0.0, $0.1] }
        #expect(odd.first == [0x4820_0000, 0xB7E0_0000])
        let full = GuestDeviceTree.extendedRegions(ram: [(GuestLayout.ram, GuestLayout.ramMaximum - (32 << 20))]).map { [$0.0, $0.1] }
        #expect(full == [[0x2_0000_0000, 0x7E_0000_0000]])
        // dom0 direct-mapped at its host address: the grant window only (Xen's domU holes would
        // cover its RAM at 0x5320_0000).
        let direct = try build(GuestMachine(memory: [(GuestPhysicalAddress(0x5320_0000), 512 << 20)], vcpus: 1, bootargs: [],
                                            directMapped: true, xen: true))
        let directNode = try #require(direct.findCompatible("xen,xen").first)
        #expect(directNode.reg(in: direct).map { [$0.address, $0.size] } == [[0x3800_0000, 0x100_0000]])
    }

    /// A seed given goes to /chosen/rng-seed as it is; none, no property.
    @Test func theRNGSeedIsInChosen() throws {
        let seed = (0 ..< 64).map { UInt8($0) }
        let root = try build(GuestMachine(memory: [(GuestLayout.ram, 64 << 20)], vcpus: 1, bootargs: [], rngSeed: seed))
        #expect(root.node(atPath: "/chosen")?.property("rng-seed")?.value == seed)
        let none = try build(GuestMachine(memory: [(GuestLayout.ram, 64 << 20)], vcpus: 1, bootargs: []))
        #expect(none.node(atPath: "/chosen")?.property("rng-seed") == nil)
    }

    /// A restarted domain's tree says how many times it was restarted; a first boot's says nothing.
    @Test func aRestartIsCountedInChosen() throws {
        var machine = GuestMachine(memory: [(GuestLayout.ram, 64 << 20)], vcpus: 1, bootargs: [])
        #expect(try build(machine).node(atPath: "/chosen")?.property("tern,restarts") == nil)
        machine.restarts = 3
        #expect(try build(machine).node(atPath: "/chosen")?.property("tern,restarts")?.u32 == 3)
    }
}
