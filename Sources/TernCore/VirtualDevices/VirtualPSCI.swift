// PSCI as guests see it (HVC #0 or SMC, SMCCC function IDs in x0): which calls exist, what they answer
// and which vCPU a call names, decided here and host-tested; the hypervisor carries out the rest
// (starting, stopping and suspending vCPUs, ending the domain), under all of its scheduler's locks.

public enum VirtualPSCI {
    /// What a call asks of the hypervisor.
    public enum Action: Equatable, Sendable {
        /// Put this in x0 and return to the guest.
        case answer(UInt64)
        /// CPU_ON of vCPU `vcpu` at `entry`, with `context` in its x0; ALREADY_ON is the
        /// hypervisor's to answer, since only it knows (under its lock) whether the vCPU is on.
        case cpuOn(vcpu: Int, entry: UInt64, context: UInt64)
        /// AFFINITY_INFO of vCPU `vcpu`: 0 when it is on, 1 when off.
        case affinityInfo(vcpu: Int)
        case cpuOff
        /// CPU_SUSPEND: as WFI (x0 = 0 when it returns).
        case suspend
        case systemOff
        case systemReset
    }

    /// PSCI 1.0 and SMCCC 1.1, as Xen 4.17 offers them.
    public static let version: UInt64 = 1 << 16
    public static let smcccVersion: UInt64 = 0x1_0001
    /// MIGRATE_INFO_TYPE: no trusted OS to migrate.
    public static let noTrustedOS: UInt64 = 2

    /// The call in x0 with its arguments x1-x3, for a domain of `vcpus` vCPUs.
    public static func decode(_ x0: UInt64, _ x1: UInt64, _ x2: UInt64, _ x3: UInt64, vcpus: Int) -> Action {
        let invalid = Action.answer(PSCIResult.invalidParameters.returnValue)
        // SMC32 calls' arguments are W registers: the upper halves are not the caller's (SMCCC).
        let w1 = x1 & 0xFFFF_FFFF, w2 = x2 & 0xFFFF_FFFF, w3 = x3 & 0xFFFF_FFFF
        switch PSCIFunction(rawValue: UInt32(truncatingIfNeeded: x0)) {
        case .version: return .answer(version)
        case .smccc_version: return .answer(smcccVersion)
        case .features:
            let queried = UInt32(truncatingIfNeeded: x1)
            let known = PSCIFunction(rawValue: queried) != nil && queried != PSCIFunction.smccc_arch_features.rawValue
            return .answer(known ? 0 : PSCIResult.notSupported.returnValue)
        case .migrate_info_type: return .answer(noTrustedOS)
        case .cpu_on, .cpu_on32:
            let wide = x0 & 0xFFFF_FFFF == UInt64(PSCIFunction.cpu_on.rawValue)
            let (target, entry, context) = wide ? (x1, x2, x3) : (w1, w2, w3)
            guard let v = vcpu(affinity: target, vcpus: vcpus), entry & 3 == 0 else { return invalid }
            return .cpuOn(vcpu: v, entry: entry, context: context)
        case .affinity_info, .affinity_info32:
            let wide = x0 & 0xFFFF_FFFF == UInt64(PSCIFunction.affinity_info.rawValue)
            guard let v = vcpu(affinity: wide ? x1 : w1, vcpus: vcpus) else { return invalid }
            return .affinityInfo(vcpu: v)
        case .cpu_off: return .cpuOff
        case .cpu_suspend, .cpu_suspend32: return .suspend
        case .system_off: return .systemOff
        case .system_reset: return .systemReset
        case .smccc_arch_features, nil: return .answer(PSCIResult.notSupported.returnValue)
        }
    }

    /// The vCPU a target affinity names. Only MPIDR's affinity fields count (Xen masks with
    /// MPIDR_HWID_MASK, so bit 31 and the rest are ignored).
    public static func vcpu(affinity: UInt64, vcpus: Int) -> Int? {
        guard let index = CPUAffinity(mpidr: affinity).vcpuIndex, index < vcpus else { return nil }
        return index
    }
}
