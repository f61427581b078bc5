import Foundation
import Testing
@testable import TernTool

@Suite struct ModuleLayoutTests {
    private let mib: UInt64 = 1 << 20

    @Test func firstModuleAtTheBaseAndEachAlignedTo2MiB() {
        let addresses = ModuleLayout.addresses(forSizes: [0x1_6258, 2 * mib, 2 * mib + 1, 1, 0])
        #expect(addresses == [0x5000_0000, 0x5020_0000, 0x5040_0000, 0x5080_0000, 0x50A0_0000])
        for address in addresses { #expect(address % ModuleLayout.alignment == 0) }
    }

    @Test func noModulesNoAddresses() {
        #expect(ModuleLayout.addresses(forSizes: []).isEmpty)
    }

    @Test func placeKeepsOrderAndOwners() {
        let kernel = URL(fileURLWithPath: "/k"), ramdisk = URL(fileURLWithPath: "/r")
        let modules = ModuleLayout.place([
            (domain: 0, kind: .kernel, file: kernel, size: 100),
            (domain: 1, kind: .kernel, file: kernel, size: 100),
            (domain: 1, kind: .ramdisk, file: ramdisk, size: 3 * mib),
        ])
        #expect(modules == [
            BootModule(domain: 0, kind: .kernel, file: kernel, address: 0x5000_0000, size: 100),
            BootModule(domain: 1, kind: .kernel, file: kernel, address: 0x5020_0000, size: 100),
            BootModule(domain: 1, kind: .ramdisk, file: ramdisk, address: 0x5040_0000, size: 3 * mib),
        ])
    }

    @Test func smallMachinesGetTheMinimum() {
        let modules = ModuleLayout.place([(domain: 0, kind: .kernel, file: URL(fileURLWithPath: "/k"), size: 90_000)])
        #expect(ModuleLayout.machineMemoryMiB(modules: modules, domainMemoryMiB: [32, 32]) == 1024)
    }

    @Test func largeMachinesCountModulesDomainsAndSlack() {
        // Modules end at 0x5000_0000 + 2 MiB + 5 MiB + 1 byte: 8 MiB once rounded up.
        let modules = ModuleLayout.place([
            (domain: 0, kind: .kernel, file: URL(fileURLWithPath: "/k"), size: 1),
            (domain: 0, kind: .ramdisk, file: URL(fileURLWithPath: "/r"), size: 5 * mib + 1),
        ])
        #expect(ModuleLayout.machineMemoryMiB(modules: modules, domainMemoryMiB: [1000, 1]) == 256 + 8 + 1000 + 2 + 64)
    }
}
