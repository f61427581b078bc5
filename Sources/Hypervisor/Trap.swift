// Every exit from a guest arrives here with the vCPU's registers already in its frame. The common cases
// (a hypercall, a GIC register, a timer interrupt) return the same frame without touching the
// scheduler; only blocking, yielding, slice ends and domain deaths go through `schedule`.
import TernArch
import TernArchAsm
import TernCore

enum TrapKind: UInt64 {
    case sync = 0, irq = 1, fiq = 2, serror = 3
    case sync32 = 4, irq32 = 5, fiq32 = 6, serror32 = 7
}

@_cdecl("tern_trap")
func ternTrap(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> UnsafeMutablePointer<tern_frame> {
    // The frame names its vCPU, which is alive while it runs: borrowed, so the common paths neither
    // look up the CPU nor touch reference counts.
    guard let owner = frame.pointee.owner else {
        let cpu = thisCPU()
        lockScheduler()
        return schedule(cpu)
    }
    return Unmanaged<VCPU>.fromOpaque(owner)._withUnsafeGuaranteedRef { v in
        switch kind {
        case TrapKind.sync.rawValue:
            return synchronous(v)
        case TrapKind.irq.rawValue, TrapKind.irq32.rawValue, TrapKind.fiq.rawValue, TrapKind.fiq32.rawValue:
            return interrupt(v, thisCPU())
        default:
            log { c in
                c.domain(v.domain)
                c.s(": SError or AArch32 exception (esr ")
                c.hex(v.frame.pointee.esr)
                c.s("); the domain crashed")
            }
            return kill(v.domain, thisCPU())
        }
    }
}

@inline(__always)
private func synchronous(_ v: VCPU) -> UnsafeMutablePointer<tern_frame> {
    let esr = ExceptionSyndrome(v.frame.pointee.esr)
    switch esr.exceptionClass {
    case ExceptionClass.hvc64:
        if esr.iss & 0xFFFF == xenHypercallImmediate { return hypercall(v) }
        if esr.iss & 0xFFFF == 0 { return firmwareCall(v) }
        v.frame.pointee.elr &-= 4       // an undefined HVC faults at itself, not after it
        injectUndefined(v)
        return v.frame
    case ExceptionClass.smc64:
        v.frame.pointee.elr &+= 4       // a trapped SMC returns to itself
        return firmwareCall(v)
    case ExceptionClass.dataAbortLower:
        return dataAbort(v, esr)
    case ExceptionClass.sysreg:
        return systemRegister(v, esr)
    case ExceptionClass.wfx:
        v.frame.pointee.elr &+= 4
        let cpu = thisCPU()
        lockScheduler()
        if esr.iss & 1 != 0 {
            scheduler.yield(pcpu: cpu.index, now: now())   // WFE: someone else holds a lock we want
        } else if !blockCurrent(v, reason: .wfi) {
            unlockScheduler()
            return v.frame
        }
        return schedule(cpu)
    case ExceptionClass.instructionAbortLower:
        let ipa = faultingIPA()
        log { c in
            c.domain(v.domain)
            c.s(": stage-2 instruction abort at guest address ")
            c.hex(ipa.raw)
            c.s(", pc ")
            c.hex(v.frame.pointee.elr)
            c.s("; the domain crashed")
        }
        return kill(v.domain, thisCPU())
    default:
        log { c in
            c.domain(v.domain)
            c.s(": unexpected ")
            c.s(ExceptionClass.name(esr.exceptionClass))
            c.s(" (esr ")
            c.hex(esr.raw)
            c.s(", pc ")
            c.hex(v.frame.pointee.elr)
            c.s("); the domain crashed")
        }
        return kill(v.domain, thisCPU())
    }
}

@inline(__always) private func faultingIPA() -> GuestPhysicalAddress {
    GuestPhysicalAddress((read_hpfar_el2() >> 4) << 12 | read_far_el2() & 0xFFF)
}

private func dataAbort(_ v: VCPU, _ esr: ExceptionSyndrome) -> UnsafeMutablePointer<tern_frame> {
    let ipa = faultingIPA()
    let access = DataAbort(iss: esr.iss)
    if access.isValid && (emulateGIC(v, ipa: ipa, access: access) || emulateUART(v, ipa: ipa, access: access)) {
        v.frame.pointee.elr &+= 4
        return v.frame
    }
    log { c in
        c.domain(v.domain)
        c.s(": stage-2 data abort at guest address ")
        c.hex(ipa.raw)
        c.s(access.isWrite ? " (write)" : " (read)")
        c.s(", pc ")
        c.hex(v.frame.pointee.elr)
        c.s("; the domain crashed")
    }
    return kill(v.domain, thisCPU())
}

/// Trapped system registers: the guest's SGI generation is emulated; anything else (implementation
/// defined registers, cache maintenance by set/way, ...) is refused as the hardware would refuse it.
private func systemRegister(_ v: VCPU, _ esr: ExceptionSyndrome) -> UnsafeMutablePointer<tern_frame> {
    let access = SystemRegisterAccess(iss: esr.iss)
    switch access.encoding {
    case SystemRegister.icc_sgi1r_el1 where !access.isRead:
        sendVirtualSGI(from: v, value: v.register(access.register))
        v.frame.pointee.elr &+= 4
    default:
        injectUndefined(v)
    }
    return v.frame
}

private func interrupt(_ v: VCPU, _ cpu: PhysicalCPU) -> UnsafeMutablePointer<tern_frame> {
    var reschedule = false
    while true {
        let intid = GICv3.acknowledge()
        if intid >= GICv3.spurious { break }
        switch intid {
        case GICv3.virtualTimerPPI:
            // Level-triggered: mask it at the timer until the guest reprograms it, and pass it on. The
            // interrupt may be stale (it was raised for the vCPU this CPU ran before, whose timer left
            // with it): only a timer that is enabled, unmasked and expired now is this vCPU's.
            let ctl = read_cntv_ctl_el0()
            if ctl & 7 == 5 {
                write_cntv_ctl_el0(ctl | 2)
                raiseInterrupt(v, Int(GuestLayout.virtualTimerPPI))
            }
        case GICv3.hypervisorTimerPPI:
            GenericTimer.cancelAlarm()
            reschedule = true
        case GICv3.maintenancePPI:
            write_ich_hcr_el2(1)
            flushPendingInterrupts(v)
        case consoleInterrupt:
            consoleInputInterrupt()
        default:
            reschedule = true            // a kick from another CPU
        }
        GICv3.endOfInterrupt(intid)
    }
    if !reschedule {
        flushPendingInterrupts(v)
        return v.frame
    }
    lockScheduler()
    return schedule(cpu)
}

/// Makes the guest take an Undefined Instruction exception at EL1, as if the instruction did not exist.
func injectUndefined(_ v: VCPU) {
    let f = v.frame
    let spsr = f.pointee.spsr
    write_elr_el1(f.pointee.elr)
    write_spsr_el1(spsr)
    write_esr_el1(1 << 25)              // EC 0 (unknown), IL
    let fromEL = spsr >> 2 & 3
    let offset: UInt64 = fromEL == 0 ? 0x400 : (spsr & 1 != 0 ? 0x200 : 0)
    f.pointee.elr = read_vbar_el1() &+ offset
    f.pointee.spsr = spsrEL1hMasked
}

/// Ends the domain and picks something else to run here.
func kill(_ d: Domain, _ cpu: PhysicalCPU) -> UnsafeMutablePointer<tern_frame> {
    lockScheduler()
    crashDomain(d)
    return schedule(cpu)
}

@_cdecl("tern_fatal")
func ternFatal(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> Never {
    let esr = read_esr_el2()
    withConsole { c in
        c.s("\n(tern) HYPERVISOR FAULT: ")
        c.s(ExceptionClass.name(esr >> 26 & 0x3F))
        c.s(" (kind ")
        c.dec(kind)
        c.s(") on pcpu ")
        c.dec(read_mpidr_el1() & 0xFF)
        c.s("\n(tern)   esr ")
        c.hex(esr)
        c.s(" far ")
        c.hex(read_far_el2())
        c.s(" elr ")
        c.hex(frame.pointee.elr)
        c.s(" spsr ")
        c.hex(frame.pointee.spsr)
        let regs = UnsafeMutableRawPointer(frame)
        for i in 0 ..< 31 {
            if i % 4 == 0 { c.s("\n(tern)  ") }
            c.s(" x")
            c.dec(i)
            c.s("=")
            c.hex(regs.load(fromByteOffset: i * 8, as: UInt64.self))
        }
        c.s("\n(tern) halted\n")
    }
    firmware.systemOff()
}
