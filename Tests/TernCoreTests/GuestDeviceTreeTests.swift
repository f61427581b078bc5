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
}
