// PSCI as guests see it (HVC #0 or SMC with SMCCC function ids): starting and stopping their vCPUs and
// powering their machine off. Unknown calls get SMCCC's NOT_SUPPORTED, never an exception.
import TernArch
import TernArchAsm
import TernCore

func firmwareCall(_ v: VCPU) -> Resume {
    let f = v.frame
    let function = UInt32(truncatingIfNeeded: f.pointee.x.0)
    var result = PSCIResult.notSupported.returnValue
    switch PSCIFunction(rawValue: function) {
    case .version:
        result = 1 << 16                                  // PSCI 1.0
    case .smccc_version:
        result = 0x1_0001                                 // SMCCC 1.1
    case .features:
        let queried = UInt32(truncatingIfNeeded: f.pointee.x.1)
        result = PSCIFunction(rawValue: queried) != nil && queried != PSCIFunction.smccc_arch_features.rawValue
            ? 0 : PSCIResult.notSupported.returnValue
    case .migrate_info_type:
        result = 2                                        // no trusted OS to migrate
    case .cpu_on, .cpu_on32:
        result = cpuOn(v.domain, target: f.pointee.x.1, entry: f.pointee.x.2, context: f.pointee.x.3)
    case .affinity_info, .affinity_info32:
        if let t = v.domain.vcpu(affinity: f.pointee.x.1) {
            result = t.online ? 0 : 1
        } else {
            result = PSCIResult.invalidParameters.returnValue
        }
    case .cpu_off:
        lockScheduler()
        v.online = false
        v.blocked = .offline
        scheduler.block(v.slot, now: now())
        return leaveCPU()
    case .cpu_suspend, .cpu_suspend32:
        f.pointee.x.0 = 0
        lockScheduler()
        if !blockCurrent(v, reason: .wfi) {
            unlockScheduler()
            return f
        }
        return leaveCPU()
    case .system_off:
        lockScheduler()
        shutdownDomain(v.domain, reason: .poweroff, via: "PSCI SYSTEM_OFF")
        return leaveCPU()
    case .system_reset:
        lockScheduler()
        shutdownDomain(v.domain, reason: .reboot, via: "PSCI SYSTEM_RESET")
        return leaveCPU()
    case .smccc_arch_features, .none:
        break
    }
    f.pointee.x.0 = result
    return f
}

private func cpuOn(_ d: Domain, target: UInt64, entry: UInt64, context: UInt64) -> UInt64 {
    guard let t = d.vcpu(affinity: target) else { return PSCIResult.invalidParameters.returnValue }
    guard entry & 3 == 0 else { return PSCIResult.invalidParameters.returnValue }
    lockScheduler()
    defer { unlockScheduler() }
    if t.online { return PSCIResult.alreadyOn.returnValue }
    t.reset(entry: GuestPhysicalAddress(entry), x0: context)
    t.online = true
    t.blocked = .offline
    wake(t)
    return PSCIResult.success.returnValue
}
