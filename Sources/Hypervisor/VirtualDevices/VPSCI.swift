// PSCI as guests see it (HVC #0 or SMC with SMCCC function ids): starting and stopping their vCPUs and
// powering their machine off. TernCore's VirtualPSCI decides what a call means (unknown calls get
// SMCCC's NOT_SUPPORTED, never an exception); this carries it out.
import TernArch
import TernArchAsm
import TernCore

func firmwareCall(_ v: VCPU) -> Resume {
    let f = v.frame
    let d = v.domain
    var result: UInt64
    switch VirtualPSCI.decode(f.pointee.x.0, f.pointee.x.1, f.pointee.x.2, f.pointee.x.3, vcpus: d.vcpus.count) {
    case .answer(let answer):
        result = answer
    case .cpuOn(let index, let entry, let context):
        result = cpuOn(d.vcpus[index], entry: entry, context: context)
    case .affinityInfo(let index):
        result = d.vcpus[index].online ? 0 : 1
    case .cpuOff:
        lockScheduler()
        v.online = false
        v.blocked = .offline
        scheduler.block(v.slot, now: now())
        return leaveCPU()
    case .suspend:
        f.pointee.x.0 = 0
        lockScheduler()
        if !blockCurrent(v, reason: .wfi) {
            unlockScheduler()
            return f
        }
        return leaveCPU()
    case .systemOff:
        lockScheduler()
        shutdownDomain(d, reason: .poweroff, via: "PSCI SYSTEM_OFF")
        return leaveCPU()
    case .systemReset:
        lockScheduler()
        shutdownDomain(d, reason: .reboot, via: "PSCI SYSTEM_RESET")
        return leaveCPU()
    }
    f.pointee.x.0 = result
    return f
}

private func cpuOn(_ t: VCPU, entry: UInt64, context: UInt64) -> UInt64 {
    lockScheduler()
    defer { unlockScheduler() }
    if t.online { return PSCIResult.alreadyOn.returnValue }
    t.reset(entry: GuestPhysicalAddress(entry), x0: context)
    t.online = true
    t.blocked = .offline
    wake(t)
    return PSCIResult.success.returnValue
}
