// The SMP guest: vCPU 0 starts vCPU 1 with PSCI CPU_ON, both work at once, vCPU 1 stops itself with
// CPU_OFF, and vCPU 0 checks it is off before powering the domain off.
import GuestKit

// Plain globals: statically initialized, so both vCPUs may touch them first.
nonisolated(unsafe) var work0: UInt64 = 0
nonisolated(unsafe) var work1: UInt64 = 0
nonisolated(unsafe) var finished = false

func spin(seconds: UInt64) -> UInt64 {
    let end = Timer.ticks + seconds * Timer.frequency
    var n: UInt64 = 0
    while Timer.ticks < end { n += 1 }
    return n
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let seconds = UInt64(args.integer("seconds", default: 1))
    let r = PSCI.startVCPU(1)
    print("smp: vcpu0 started vcpu1 (PSCI \(r)), vcpu1 on: \(PSCI.isOn(1))")
    work0 = spin(seconds: seconds)
    while !finished { Xen.yield() }
    while PSCI.isOn(1) { Xen.yield() }
    print("smp: vcpu0 work=\(work0) vcpu1 work=\(work1); vcpu1 is off")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    print("smp: vcpu\(index) up")
    work1 = spin(seconds: 1)
    finished = true
    PSCI.stopThisVCPU()
}
