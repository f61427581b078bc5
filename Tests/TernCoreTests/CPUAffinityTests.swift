import Testing
@testable import TernCore

/// MPIDR affinities in the GIC's layouts: what lets Tern find redistributors and send kicks to CPUs
/// beyond the first cluster.
@Suite struct CPUAffinityTests {
    /// QEMU virt with GICv3 puts 16 CPUs in a cluster (Aff0 0-15), then the next cluster in Aff1.
    static let qemu17 = (0 ..< 17).map { CPUAffinity(mpidr: UInt64($0 / 16) << 8 | UInt64($0 % 16)) }
    /// A big server: four levels, Aff0 past 15 (the range selector's case).
    static let server: [CPUAffinity] = [0x0, 0x1, 0x11, 0x100, 0x1_0000, 0x1_0000_0000, 0x2_0003_0405].map { CPUAffinity(mpidr: $0) }

    @Test func fieldsAreReadFromTheMPIDRAndTheDeviceTree() {
        let c = CPUAffinity(mpidr: 0x8000_0000 | 0x2_0003_0405)        // bit 31 is RES1 in MPIDR_EL1
        #expect((c.aff0, c.aff1, c.aff2, c.aff3) == (5, 4, 3, 2))
        #expect(CPUAffinity(deviceTreeReg: 0x2_0003_0405) == c)
        #expect(CPUAffinity(deviceTreeReg: 0x8000_0000) == nil)         // not an affinity
        #expect(CPUAffinity(deviceTreeReg: 0x100_0000) == nil)
    }

    @Test func redistributorAffinityPacksTheFourLevels() {
        #expect(CPUAffinity(mpidr: 3).redistributorAffinity == 3)
        #expect(CPUAffinity(mpidr: 0x102).redistributorAffinity == 0x102)
        #expect(CPUAffinity(mpidr: 0x2_0003_0405).redistributorAffinity == 0x0203_0405)
    }

    @Test func anSGIReachesExactlyItsCPU() {
        for cpus in [Self.qemu17, Self.server] {
            for c in cpus {
                let value = c.sgi(15)
                #expect(value >> 24 & 0xF == 15)
                #expect(CPUAffinity.targets(ofSGI: value, among: cpus) == [c])
            }
        }
        // The first cluster's CPUs are bits of the target list, as Tern kicked them before.
        #expect(Self.qemu17[3].sgi(15) == 15 << 24 | 1 << 3)
        #expect(Self.qemu17[16].sgi(15) == 15 << 24 | 1 << 16 | 1)
        #expect(CPUAffinity(mpidr: 0x11).sgi(0) == 1 << 44 | 1 << 1)
    }

    /// vCPUs are named as Xen names them: 16 per Aff1 group, so an SGI target list reaches each.
    @Test func vcpuAffinitiesAreXensAndRoundTrip() {
        #expect(CPUAffinity(vcpu: 0).raw == 0 && CPUAffinity(vcpu: 7).raw == 7)
        #expect(CPUAffinity(vcpu: 16).raw == 0x100 && CPUAffinity(vcpu: 37).raw == 0x205)
        for index in 0 ..< 4096 { #expect(CPUAffinity(vcpu: index).vcpuIndex == index) }
        #expect(CPUAffinity(mpidr: 0x10).vcpuIndex == nil)             // Aff0 16: no vCPU has it
        #expect(CPUAffinity(mpidr: 0x1_0000).vcpuIndex == nil)         // Aff2
        #expect(CPUAffinity(mpidr: 0x1_0000_0000).vcpuIndex == nil)    // Aff3
        #expect(CPUAffinity(mpidr: 0x8000_0103).vcpuIndex == 19)       // bit 31 is not affinity
    }
}
