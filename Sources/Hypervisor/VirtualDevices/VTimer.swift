// A vCPU's two EL1 timers as the guest sees them. Their interrupts are level-sensitive: pending while
// the timer's condition holds (enabled, unmasked, compare value passed), gone from the virtual GIC when
// it stops holding before the guest has taken the interrupt, and due again after the guest has handled
// one if the condition still holds.
//
// The virtual timer is the hardware's own (CNTV_*, switched with the vCPU); the guest programs it without
// trapping. When its physical PPI fires, Tern disables that PPI at this CPU's redistributor (never the
// guest's own IMASK, which stays the guest's to read and write) and hands the guest the virtual PPI in a
// list register that asks for a maintenance interrupt when the guest deactivates it. At every exit while
// it is in flight, Tern looks again: withdrawn if the timer no longer asserts and the guest has not taken
// it, finished once the guest has deactivated it; either way the physical PPI is enabled again.
//
// The EL1 physical timer (CNTP_*) traps (CNTHCTL_EL2.EL1PCEN = 0) and exists only as TernCore's
// EmulatedTimer, each vCPU its own, on the same counter, with PPI 30 as Xen's vtimer gives it.
import TernArch
import TernArchAsm
import TernCore

private let virtualPPI = Int(GuestLayout.virtualTimerPPI)
private let physicalPPI = Int(GuestLayout.physicalTimerPPI)

/// ICH_LR<n>_EL2.EOI: a maintenance interrupt once the guest deactivates the interrupt.
let listRegisterEOI: UInt64 = 1 << 41

/// Whether `intid` is a timer's: its list register asks to be told when the guest is done.
@inline(__always) func isTimerInterrupt(_ intid: Int) -> Bool { intid == virtualPPI || intid == physicalPPI }

/// The virtual timer's physical PPI fired on this CPU, where `v` runs.
func virtualTimerFired(_ v: VCPU, _ cpu: PhysicalCPU) {
    // It may be stale (raised for the vCPU this CPU ran before): only an asserting timer is `v`'s.
    guard read_cntv_ctl_el0() & 7 == 5 else { return }
    setVirtualTimerPPI(enabled: false, cpu)
    guard !v.timerInFlight else { return }
    v.timerInFlight = true
    raiseInterrupt(v, virtualPPI)
}

/// At an exit of `v` (running here) with its virtual timer's interrupt in flight.
func followVirtualTimer(_ v: VCPU) {
    let asserted = read_cntv_ctl_el0() & 7 == 5
    if let (lr, value) = listRegister(holding: virtualPPI, among: listRegistersInUse(), orFinished: true) {
        let state = value >> 62
        if state == 0 {
            tern_write_lr(lr, 0)                        // deactivated by the guest: done
        } else if state == 1 && !asserted {
            tern_write_lr(lr, 0)                        // pending, not taken, and no longer due: withdrawn
        } else {
            return                                      // still pending, or being handled
        }
    } else {
        // Still waiting in the redistributor for a list register: withdrawn unless still due.
        let due = v.domain.withVGIC { () -> Bool in
            guard v.redistributor.pending & (1 << UInt32(virtualPPI)) != 0 else { return false }
            if asserted { return true }
            v.redistributor.delivered(virtualPPI)
            return false
        }
        if due { return }
    }
    v.timerInFlight = false
    setVirtualTimerPPI(enabled: true, thisCPU())
}

/// The maintenance interrupt: list registers whose interrupt the guest deactivated and that asked to
/// be told (the timers'). Each is freed; a timer that still asserts is due again.
func timerInterruptsDeactivated(_ v: VCPU) {
    var done = read_ich_eisr_el2() & 0xF
    while done != 0 {
        let lr = Int32(done.trailingZeroBitCount)
        done &= done - 1
        let intid = Int(tern_read_lr(lr) & 0xFFFF_FFFF)
        tern_write_lr(lr, 0)
        if intid == virtualPPI {
            v.timerInFlight = false
            setVirtualTimerPPI(enabled: true, thisCPU())
        } else if intid == physicalPPI && v.physicalTimerLine {
            _ = v.domain.withVGIC { v.redistributor.raise(physicalPPI) }
        }
    }
}

/// The physical PPI follows the vCPU that is about to run on `cpu`: off while its timer's interrupt is
/// in flight. Also gives it an interrupt its timer raised while it was away.
@inline(__always) func virtualTimerSwitchedIn(_ v: VCPU, _ cpu: PhysicalCPU) {
    if !v.timerInFlight && v.el1.pointee.cntv_ctl & 3 == 1 && v.el1.pointee.cntv_cval <= GenericTimer.now {
        v.timerInFlight = true
        _ = v.domain.withVGIC { v.redistributor.raise(virtualPPI) }
    }
    if cpu.virtualTimerPPIEnabled == v.timerInFlight { setVirtualTimerPPI(enabled: !v.timerInFlight, cpu) }
    if v.physicalTimerLine || v.physicalTimer.control & EmulatedTimer.enable != 0 { syncPhysicalTimer(v, now: GenericTimer.now) }
}

@inline(never) private func setVirtualTimerPPI(enabled: Bool, _ cpu: PhysicalCPU) {
    guard cpu.virtualTimerPPIEnabled != enabled else { return }
    cpu.virtualTimerPPIEnabled = enabled
    GICv3.setPPI(GICv3.virtualTimerPPI, enabled: enabled, sgiFrame: cpu.sgiFrame)
}

// MARK: The EL1 physical timer

/// A trapped CNTP_CTL_EL0, CNTP_CVAL_EL0 or CNTP_TVAL_EL0 access of `v` (running here).
func emulatePhysicalTimer(_ v: VCPU, _ register: EmulatedTimer.Register, _ access: SystemRegisterAccess) {
    let t = GenericTimer.now
    if access.isRead {
        v.setRegister(access.register, v.physicalTimer.read(register, now: t))
        return
    }
    v.physicalTimer.write(register, v.register(access.register), now: t)
    syncPhysicalTimer(v, now: t)
    flushPendingInterrupts(v)
    // Its deadline may have moved: this CPU's alarm covers the running vCPU's.
    let cpu = thisCPU()
    lockRunQueue(cpu.index)
    armAlarm(cpu, now: now())
    unlockRunQueue(cpu.index)
}

/// Brings PPI 30 in line with the timer's condition at counter value `t`: raised when it starts to
/// hold, withdrawn (if the guest has not taken it) when it stops. `v` runs here, or is off every CPU.
func syncPhysicalTimer(_ v: VCPU, now t: UInt64) {
    let line = v.physicalTimer.isAsserted(now: t)
    guard line != v.physicalTimerLine else { return }
    v.physicalTimerLine = line
    if line {
        _ = v.domain.withVGIC { v.redistributor.raise(physicalPPI) }
        return
    }
    v.domain.withVGIC { v.redistributor.delivered(physicalPPI) }
    guard v.runningOn == thisCPUIndex(),
          let (lr, value) = listRegister(holding: physicalPPI, among: listRegistersInUse()) else { return }
    switch value >> 62 {
    case 1: tern_write_lr(lr, 0)                                       // pending only: gone
    case 3: tern_write_lr(lr, value & ~(1 << 62))                      // active and pending: active
    default: break
    }
}

/// When `v`'s physical timer will next fire (.never: not armed).
@inline(__always) func physicalTimerDeadline(_ v: VCPU) -> Nanoseconds {
    v.physicalTimer.control & EmulatedTimer.enable == 0 ? .never : armedPhysicalTimerDeadline(v)
}

@inline(never) private func armedPhysicalTimerDeadline(_ v: VCPU) -> Nanoseconds {
    v.physicalTimer.deadline(now: GenericTimer.now).map { systemCounter.deadline(at: CounterTicks($0)) } ?? .never
}
