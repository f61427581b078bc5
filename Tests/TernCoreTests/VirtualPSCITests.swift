import Testing
@testable import TernCore

/// PSCI's decisions, from the function ID and arguments a guest passes.
@Suite struct VirtualPSCITests {
    func call(_ f: PSCIFunction, _ x1: UInt64 = 0, _ x2: UInt64 = 0, _ x3: UInt64 = 0, vcpus: Int = 2) -> VirtualPSCI.Action {
        VirtualPSCI.decode(UInt64(f.rawValue), x1, x2, x3, vcpus: vcpus)
    }

    static let notSupported = VirtualPSCI.Action.answer(PSCIResult.notSupported.returnValue)
    static let invalid = VirtualPSCI.Action.answer(PSCIResult.invalidParameters.returnValue)

    @Test func versionsAndFeaturesAreXens() {
        #expect(call(.version) == .answer(0x1_0000))
        #expect(call(.smccc_version) == .answer(0x1_0001))
        #expect(call(.migrate_info_type) == .answer(2))
        for f in [PSCIFunction.cpu_on, .cpu_off, .system_off, .features, .smccc_version] {
            #expect(call(.features, UInt64(f.rawValue)) == .answer(0), "\(f)")
        }
        #expect(call(.features, UInt64(PSCIFunction.smccc_arch_features.rawValue)) == Self.notSupported)
        #expect(call(.features, 0x8400_0007) == Self.notSupported)           // CPU_FREEZE: not offered
        #expect(call(.smccc_arch_features) == Self.notSupported)
        #expect(VirtualPSCI.decode(0x8400_00FF, 0, 0, 0, vcpus: 1) == Self.notSupported)
        #expect(VirtualPSCI.decode(0xDEAD_BEEF_8400_0000, 0, 0, 0, vcpus: 1) == .answer(0x1_0000))   // W0 only
    }

    @Test func cpuOnNamesAVCPUOfTheDomainAndAnAlignedEntry() {
        #expect(call(.cpu_on, 1, 0x4008_0000, 7) == .cpuOn(vcpu: 1, entry: 0x4008_0000, context: 7))
        #expect(call(.cpu_on, 2, 0x4008_0000) == Self.invalid)                // only 2 vCPUs
        #expect(call(.cpu_on, 0x100, 0x4008_0000) == Self.invalid)            // Aff1: no such vCPU
        #expect(call(.cpu_on, 0x8000_0001, 0x4008_0000) == .cpuOn(vcpu: 1, entry: 0x4008_0000, context: 0))   // RES1 bit 31
        #expect(call(.cpu_on, 0x1_0000, 0x4008_0000) == Self.invalid)         // Aff2
        #expect(call(.cpu_on, 1, 0x4008_0002) == Self.invalid)                // misaligned entry
        // The 32-bit call reads W registers: garbage above them is not the guest's argument.
        #expect(call(.cpu_on32, 0xFFFF_0000_0000_0001, 0x1_4008_0000, 0xFFFF_FFFF_0000_0009)
                == .cpuOn(vcpu: 1, entry: 0x4008_0000, context: 9))
        #expect(call(.cpu_on, 0xFF_0000_0001, 0x4008_0000) == Self.invalid)    // Aff3
        #expect(call(.cpu_on, 0xFFFF_0000_0000_0001, 0x4008_0000) == .cpuOn(vcpu: 1, entry: 0x4008_0000, context: 0))   // above Aff3
        // Past 16 vCPUs, Aff1 counts the groups of 16, as Xen's vaffinity_to_vcpuid; an Aff0 of 16 or
        // more names no vCPU here (Xen would OR it into the index).
        #expect(call(.cpu_on, 0x102, 0x4008_0000, vcpus: 20) == .cpuOn(vcpu: 18, entry: 0x4008_0000, context: 0))
        #expect(call(.cpu_on, 0x10, 0x4008_0000, vcpus: 20) == Self.invalid)
    }

    @Test func affinityInfoAndTheCallsTheHypervisorCarriesOut() {
        #expect(call(.affinity_info, 1) == .affinityInfo(vcpu: 1))
        #expect(call(.affinity_info32, 0xFFFF_FFFF_0000_0000) == .affinityInfo(vcpu: 0))
        #expect(call(.affinity_info, 5) == Self.invalid)
        #expect(call(.cpu_off) == .cpuOff)
        #expect(call(.cpu_suspend) == .suspend && call(.cpu_suspend32) == .suspend)
        #expect(call(.system_off) == .systemOff && call(.system_reset) == .systemReset)
    }
}
