import Testing
@testable import TernCore

/// A dom0less domain node as `tern` writes it: 2 address and size cells, a kernel module and a ramdisk.
private func domainNode(memoryKB: UInt64? = 65536, cpus: UInt32? = 2,
                        kernel: (UInt64, UInt64)? = (0x4800_0000, 0x10_0000),
                        ramdisk: (UInt64, UInt64)? = nil) -> DTNode {
    let node = DTNode(name: Array("domU1".utf8))
    node.set("compatible", string: "xen,domain")
    node.set("#address-cells", u32: 2)
    node.set("#size-cells", u32: 2)
    if let memoryKB { node.set("memory", u64: memoryKB) }
    if let cpus { node.set("cpus", u32: cpus) }
    if let (address, size) = kernel {
        let module = DTNode(name: Array("module@1".utf8))
        module.set("compatible", strings: [Array("multiboot,kernel".utf8), Array("multiboot,module".utf8)])
        module.set("reg", cells: dtCells([address, size], cells: 2))
        module.set("bootargs", string: "seed=7")
        node.children.append(module)
    }
    if let (address, size) = ramdisk {
        let module = DTNode(name: Array("module@2".utf8))
        module.set("compatible", strings: [Array("multiboot,ramdisk".utf8), Array("multiboot,module".utf8)])
        module.set("reg", cells: dtCells([address, size], cells: 2))
        node.children.append(module)
    }
    return node
}

private let ram = [PhysicalRange(base: HostPhysicalAddress(0x4000_0000), size: 0x4000_0000)]

private func problem(_ node: DTNode) -> DomainNodeProblem? {
    if case .refused(let p) = DomainSpec.read(node, id: DomainID(1), ram: ram) { return p }
    return nil
}

@Suite struct DomainSpecTests {
    @Test func readsAWholeNode() throws {
        let node = domainNode(memoryKB: 3 * 1024, ramdisk: (0x4900_0000, 0x1000))
        node.set("tern,on-crash", u32: AfterShutdown.restart.rawValue)
        node.setEmpty(named: Array("xen,enhanced".utf8))
        guard case .spec(let spec) = DomainSpec.read(node, id: DomainID(1), ram: ram) else {
            Issue.record("refused")
            return
        }
        #expect(spec.memoryBytes == 4 << 20)         // 3 MiB, rounded up to the 2 MiB the stage 2 maps in
        #expect(spec.vcpus == 2)
        #expect(spec.kernel == PhysicalRange(base: HostPhysicalAddress(0x4800_0000), size: 0x10_0000))
        #expect(spec.ramdisk == PhysicalRange(base: HostPhysicalAddress(0x4900_0000), size: 0x1000))
        #expect(spec.bootargs == Array("seed=7".utf8))
        #expect(spec.name == Array("domU1".utf8))
        #expect(spec.xenPV && !spec.uart && spec.watchesPanic)
        #expect(spec.actions.crash == .restart && spec.actions.reboot == .restart && spec.actions.poweroff == .destroy)
    }

    @Test func refusesWhatItCannotBuild() {
        #expect(problem(domainNode(kernel: nil)) == .noKernel)
        #expect(problem(domainNode(memoryKB: nil)) == .memory(0))
        #expect(problem(domainNode(memoryKB: 1023)) == .memory(1023))
        #expect(problem(domainNode(memoryKB: 1 << 40)) == .memory(1 << 40))
        #expect(problem(domainNode(memoryKB: .max)) == .memory(.max))
        #expect(problem(domainNode(cpus: 0)) == .vcpus(0))
        #expect(problem(domainNode(cpus: UInt32(TernLimits.maximumVCPUsPerDomain) + 1)) == .vcpus(9))
        #expect(problem(domainNode(memoryKB: 1024, cpus: UInt32(TernLimits.maximumVCPUsPerDomain))) == nil)
    }

    /// Tern copies a module's bytes: one that leaves RAM (or whose end wraps) would be a read of anything.
    @Test func refusesModulesOutsideRAM() {
        let outside: [(UInt64, UInt64)] = [
            (0x0900_0000, 0x1000),                  // the UART
            (0x7FFF_F000, 0x2000),                  // runs off the end of RAM
            (0x4800_0000, .max),                    // wraps
            (.max - 0xFFF, 0x2000),                 // wraps
            (0x8000_0000, 1),                       // just past RAM
        ]
        for (address, size) in outside {
            #expect(problem(domainNode(kernel: (address, size))) == .moduleOutsideRAM(address: address, size: size))
            #expect(problem(domainNode(ramdisk: (address, size))) == .moduleOutsideRAM(address: address, size: size))
        }
        #expect(problem(domainNode(kernel: (0x4000_0000, 0x4000_0000))) == nil)   // all of RAM, exactly
    }

    /// Nor may it overlap what Tern keeps for itself: the guest would get a copy of Tern's memory.
    @Test func refusesModulesOverTern() {
        let tern = [PhysicalRange(base: HostPhysicalAddress(0x4020_0000), size: 0x60_0000)]
        func problem(_ node: DTNode) -> DomainNodeProblem? {
            if case .refused(let p) = DomainSpec.read(node, id: DomainID(1), ram: ram, reserved: tern) { return p }
            return nil
        }
        #expect(problem(domainNode(kernel: (0x4010_0000, 0x10_1000))) == .moduleOverTern(address: 0x4010_0000, size: 0x10_1000))
        #expect(problem(domainNode(ramdisk: (0x407F_F000, 0x2000))) == .moduleOverTern(address: 0x407F_F000, size: 0x2000))
        #expect(problem(domainNode(kernel: (0x4010_0000, 0x10_0000))) == nil)      // ends where Tern begins
        #expect(problem(domainNode(kernel: (0x4080_0000, 0x1000))) == nil)         // begins where it ends
    }
}
