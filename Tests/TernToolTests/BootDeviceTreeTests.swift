import Foundation
import Testing
import TernCore
@testable import TernTool

private func domain(_ id: Int, _ config: DomainConfig) -> PlannedDomain {
    PlannedDomain(id: id, config: config, configFile: URL(fileURLWithPath: "/cfg/\(config.name).cfg"),
                  kernel: .builtIn("hello"))
}

@Suite struct BootDeviceTreeTests {
    private let kernelFile = URL(fileURLWithPath: "/images/guest-hello.img")

    private func assembled(_ domains: [PlannedDomain], modules: [BootModule]) throws -> DTNode {
        try parseTree(BootDeviceTree.assemble(base: fakeQEMUTree(), domains: domains, modules: modules))
    }

    @Test func pvUARTAndDirectMapFollowTheDomainsRole() throws {
        let linux = DomainConfig(name: "l", kernel: "/k/Image")
        let tern = DomainConfig(name: "t", kernel: "tern:hello")
        var plain = DomainConfig(name: "p", kernel: "/k/Image")
        plain.xenPV = false
        plain.vuart = false
        plain.detectPanic = false
        let root = try assembled([domain(0, linux), domain(1, tern), domain(2, plain)], modules: [])
        let dom0 = try #require(root.node(atPathText: "/chosen/domU0"))
        let domU = try #require(root.node(atPathText: "/chosen/domU1"))
        let bare = try #require(root.node(atPathText: "/chosen/domU2"))
        // dom0 Linux: direct-mapped and PV, no emulated UART (its console is console_io).
        #expect(dom0.property("direct-map") != nil && dom0.property("vpl011") == nil)
        #expect(dom0.property(text: "xen,enhanced")?.stringText == "enabled")
        // A domU gets the UART; Tern's own guests are never direct-mapped (they are linked at 0x40000000).
        #expect(domU.property("vpl011") != nil && domU.property("direct-map") == nil)
        #expect(bare.property("xen,enhanced") == nil && bare.property("vpl011") == nil)
        // Tern reads Linux's panic banner unless the config says not to.
        #expect(dom0.property("tern,ignore-panic") == nil && bare.property("tern,ignore-panic") != nil)
    }

    @Test func domainNodeCarriesTheDom0lessBindingAndTernProperties() throws {
        let config = DomainConfig(name: "web", kernel: "tern:hello", memoryMiB: 48, vcpus: 2, extra: "role=web x=1",
                                  cpus: [0, 2, 3], weight: 512, cap: 150,
                                  onPoweroff: .preserve, onReboot: .renameRestart, onCrash: .restart)
        let modules = [
            BootModule(domain: 3, kind: .kernel, file: kernelFile, address: 0x5000_0000, size: 0x1_6258),
            BootModule(domain: 3, kind: .ramdisk, file: URL(fileURLWithPath: "/rd"), address: 0x5020_0000, size: 0x30_0001),
        ]
        let root = try assembled([domain(3, config)], modules: modules)
        let node = try #require(root.node(atPathText: "/chosen/domU3"))

        #expect(node.isCompatible("xen,domain"))
        #expect(node.property("#address-cells")?.u32 == 2)
        #expect(node.property("#size-cells")?.u32 == 2)
        #expect(node.property("memory")?.u64 == 48 * 1024)
        #expect(node.property("memory")?.cellCount == 2)
        #expect(node.property("cpus")?.u32 == 2)
        #expect(node.property(text: "tern,name")?.stringText == "web")
        #expect(node.property("tern,domid")?.u32 == 3)
        #expect(node.property("tern,weight")?.u32 == 512)
        #expect(node.property("tern,cap")?.u32 == 150)
        #expect(node.property("tern,affinity")?.u32 == 0b1101)
        #expect(node.property("tern,on-poweroff")?.u32 == 2)
        #expect(node.property("tern,on-reboot")?.u32 == 1)
        #expect(node.property("tern,on-crash")?.u32 == 1)
        #expect(node.property("tern,on-watchdog")?.u32 == 0)

        let kernel = try #require(node.child(named: Array("module@50000000".utf8)))
        #expect(kernel.property(text: "compatible")?.stringTexts == ["multiboot,kernel", "multiboot,module"])
        #expect(kernel.property("reg")?.cells == [0, 0x5000_0000, 0, 0x1_6258])
        #expect(kernel.property(text: "bootargs")?.stringText == "role=web x=1")
        let reg = kernel.reg(in: node)
        #expect(reg.count == 1 && reg[0].address == 0x5000_0000 && reg[0].size == 0x1_6258)

        let ramdisk = try #require(node.child(named: Array("module@50200000".utf8)))
        #expect(ramdisk.property(text: "compatible")?.stringTexts == ["multiboot,ramdisk", "multiboot,module"])
        #expect(ramdisk.property("reg")?.cells == [0, 0x5020_0000, 0, 0x30_0001])
        #expect(ramdisk.property("bootargs") == nil)
    }

    @Test func unsetCPUsOmitsAffinityAndDefaultsMapToTheHypervisorsCodes() throws {
        let root = try assembled([domain(0, DomainConfig(name: "d", kernel: "tern:hello"))], modules: [])
        let node = try #require(root.node(atPathText: "/chosen/domU0"))
        #expect(node.property("tern,affinity") == nil)
        #expect(node.property("memory")?.u64 == UInt64(DomainConfig.defaultMemoryMiB) * 1024)
        #expect(node.property("tern,weight")?.u32 == 256)
        #expect(node.property("tern,cap")?.u32 == 0)
        #expect(node.property("tern,on-poweroff")?.u32 == 0)
        #expect(node.property("tern,on-reboot")?.u32 == 1)
        #expect(node.property("tern,on-crash")?.u32 == 0)
        #expect(node.children.isEmpty)
    }

    @Test func affinityMaskAndActionCodes() {
        #expect(BootDeviceTree.affinityMask(nil) == nil)
        #expect(BootDeviceTree.affinityMask([0]) == 1)
        #expect(BootDeviceTree.affinityMask([1, 3]) == 0b1010)
        #expect(BootDeviceTree.affinityMask([31]) == 0x8000_0000)
        #expect(BootDeviceTree.actionCode(.destroy) == 0)
        #expect(BootDeviceTree.actionCode(.restart) == 1)
        #expect(BootDeviceTree.actionCode(.renameRestart) == 1)
        #expect(BootDeviceTree.actionCode(.preserve) == 2)
    }

    @Test func qemusOwnTreeIsKept() throws {
        let blob = try BootDeviceTree.assemble(
            base: fakeQEMUTree(), domains: [domain(0, DomainConfig(name: "a", kernel: "k")), domain(1, DomainConfig(name: "b", kernel: "k"))],
            modules: [])
        let root = try parseTree(blob)
        let chosen = try #require(root.child("chosen"))
        #expect(chosen.property(text: "stdout-path")?.stringText == "/pl011@9000000")
        #expect(chosen.property("kaslr-seed")?.cells == [0x1234_5678, 0x9abc_def0])
        #expect(chosen.children.map(\.nameText) == ["domU0", "domU1"])
        #expect(root.child("memory") != nil)
        let reservations = try blob.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }
        #expect(reservations.count == 1 && reservations[0].address == 0x4800_0000 && reservations[0].size == 0x1000)
    }

    @Test func aTreeWithoutChosenGetsOne() throws {
        let bare = DTNode(name: [])
        let root = try parseTree(BootDeviceTree.assemble(base: FlattenedDeviceTree.serialize(bare),
                                                         domains: [domain(0, DomainConfig(name: "a", kernel: "k"))], modules: []))
        #expect(root.node(atPathText: "/chosen/domU0") != nil)
    }

    @Test func garbageIsADeviceTreeError() {
        #expect(throws: TernToolError.self) { try BootDeviceTree.assemble(base: [1, 2, 3, 4], domains: [], modules: []) }
    }

    /// QEMU's dumpdtb exits at once without booting anything; this checks the real board's tree survives
    /// the round trip and that the domain nodes sit next to QEMU's /chosen properties.
    @Test(.enabled(if: qemuAvailable)) func assemblesOntoQEMUsDump() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let dump = folder.appendingPathComponent("base.dtb")
        let machine = QEMUMachine(cpus: 2, memoryMiB: 1024)
        let run = try Subprocess.capture(HostTools.qemu(), machine.dumpArguments(to: dump))
        #expect(run.status == 0, "\(run.output)")
        let base = try [UInt8](Data(contentsOf: dump))

        let config = DomainConfig(name: "hello", kernel: "tern:hello", memoryMiB: 32, cpus: [1])
        let module = BootModule(domain: 0, kind: .kernel, file: kernelFile, address: 0x5000_0000, size: 4096)
        let blob = try BootDeviceTree.assemble(base: base, domains: [domain(0, config)], modules: [module])
        #expect(blob.count < base.count)  // QEMU pads its dump to 1 MiB; the hypervisor accepts at most 2 MiB

        let root = try parseTree(blob)
        let chosen = try #require(root.child("chosen"))
        #expect(chosen.property("stdout-path") != nil)
        #expect(root.node(atPathText: "/chosen/domU0/module@50000000") != nil)
        #expect(root.node(atPathText: "/chosen/domU0")?.property("tern,affinity")?.u32 == 0b10)
        #expect(root.findCompatible("arm,gic-v3").count == 1)
        let cpus = try #require(root.child("cpus"))
        #expect(cpus.children.filter { $0.baseName == Array("cpu".utf8) }.count == 2)
    }
}
