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

/// What a trap handler returns: its own vCPU's frame to resume at once, or nil (from `leaveCPU`) when
/// the vCPU is to leave the CPU. Then this CPU's run-queue lock (or every one) is held, and the exit
/// path completes the frame (a hypercall exit still holds x19-x29 in registers) before `tern_schedule`
/// lets go of it: no other CPU can pick the vCPU and resume a frame that is not yet whole.
typealias Resume = UnsafeMutablePointer<tern_frame>?

/// The vCPU that trapped leaves the CPU; call with this CPU's run-queue lock held, or every one.
@inline(__always) func leaveCPU() -> Resume { nil }

@_cdecl("tern_trap")
func ternTrap(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> Resume {
    // The frame names its vCPU, which is alive while it runs: borrowed, so the common paths neither
    // look up the CPU nor touch reference counts.
    guard let owner = frame.pointee.owner else {
        lockRunQueue(thisCPUIndex())
        return leaveCPU()
    }
    return Unmanaged<VCPU>.fromOpaque(owner)._withUnsafeGuaranteedRef { v in
        if v.timerInFlight { followVirtualTimer(v) }
        switch kind {
        case TrapKind.sync.rawValue:
            return synchronous(v)
        case TrapKind.irq.rawValue, TrapKind.irq32.rawValue, TrapKind.fiq.rawValue, TrapKind.fiq32.rawValue:
            return thisCPUObject._withUnsafeGuaranteedRef { interrupt(v, $0) }
        default:
            log { c in
                c.domain(v.domain)
                c.s(": SError or AArch32 exception (esr ")
                c.hex(v.frame.pointee.esr)
                c.s("); the domain crashed")
            }
            return kill(v.domain)
        }
    }
}

@inline(__always)
private func synchronous(_ v: VCPU) -> Resume {
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
        return waitForInterrupt(v, esr)
    case ExceptionClass.instructionAbortLower:
        if isMapped(v.domain, faultingIPA(), for: .execute) { return v.frame }
        // Nothing to run there: the guest's own handler decides, as on hardware (Xen injects it too).
        reportAbort(v, "instruction fetch", at: faultingIPA())
        // Unless the handler is what has nothing behind it: the guest would abort there for ever.
        if v.frame.pointee.elr == syncVector(spsr: v.frame.pointee.spsr) {
            log { c in
                c.domain(v.domain)
                c.s(": its exception vector has nothing behind it; the domain crashed")
            }
            return kill(v.domain)
        }
        injectAbort(v, instruction: true, write: false)
        return v.frame
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
        return kill(v.domain)
    }
}

/// A trapped WFI (the vCPU waits for an interrupt) or WFE. Out of line: the trap path's common cases
/// keep their registers.
@inline(never) private func waitForInterrupt(_ v: VCPU, _ esr: ExceptionSyndrome) -> Resume {
    v.frame.pointee.elr &+= 4
    let p = thisCPUIndex()
    lockRunQueue(p)
    if esr.iss & 1 != 0 {
        scheduler.yield(pcpu: p, now: now())   // WFE: someone else holds a lock we want
    } else if !blockCurrent(v, reason: .wfi) {
        unlockRunQueue(p)
        return v.frame
    }
    return leaveCPU()
}

@inline(__always) private func faultingIPA() -> GuestPhysicalAddress {
    // HPFAR_EL2.FIPA (bits 43:4 without FEAT_D128) is the faulting frame; FAR_EL2 has the offset in it.
    GuestFrameNumber(read_hpfar_el2() >> 4).address + read_far_el2() & 0xFFF
}

private func dataAbort(_ v: VCPU, _ esr: ExceptionSyndrome) -> Resume {
    let ipa = faultingIPA()
    let access = DataAbort(iss: esr.iss)
    if access.isValid, let (device, offset) = v.domain.mmio.find(ipa) {
        let handled: Bool
        switch device {
        case .gicDistributor: handled = emulateDistributor(v, offset: Int(offset), access: access)
        case .gicRedistributors: handled = emulateRedistributors(v, offset: offset, access: access)
        case .uart: handled = emulateUART(v, offset: Int(offset), access: access)
        }
        if handled {
            v.frame.pointee.elr &+= 4
            return v.frame
        }
    }
    // A page that was there again by now (a block of its RAM was being split while the access ran,
    // see DomainMemory.swift): the access is retried.
    if isMapped(v.domain, ipa, for: access.isWrite ? .write : .read) { return v.frame }
    // Nothing behind the address (or an access no device model decodes): the guest takes a synchronous
    // external abort, as hardware gives it and Xen injects it, and its own handler decides.
    reportAbort(v, access.isWrite ? "write" : "read", at: ipa)
    injectAbort(v, instruction: false, write: access.isWrite)
    return v.frame
}

/// Says once per domain where it reached for nothing: the first thing to look at when a guest dies of it.
/// Whether `ipa` has a translation allowing `access` in `d`'s stage 2 now (under its lock, so a change
/// under way is done): a fault the stage 2 no longer explains.
@inline(never) private func isMapped(_ d: Domain, _ ipa: GuestPhysicalAddress, for access: Permissions) -> Bool {
    d.physMap.withLock { m in m.stage2.translate(ipa, memory: m.tables)?.permissions.contains(access) ?? false }
}

private func reportAbort(_ v: VCPU, _ what: StaticString, at ipa: GuestPhysicalAddress) {
    let d = v.domain
    guard !d.reportedAbort else { return }
    d.reportedAbort = true
    log { c in
        c.domain(d)
        c.s(": ")
        c.s(what)
        c.s(" at guest address ")
        c.hex(ipa.raw)
        c.s(" with nothing there (pc ")
        c.hex(v.frame.pointee.elr)
        c.s("): synchronous external abort given to the guest")
    }
}

/// Trapped system registers: the guest's SGI generation and EL1 physical timer are emulated; anything
/// else (implementation defined registers, cache maintenance by set/way, ...) is refused as the
/// hardware would refuse it.
private func systemRegister(_ v: VCPU, _ esr: ExceptionSyndrome) -> Resume {
    let access = SystemRegisterAccess(iss: esr.iss)
    switch access.encoding {
    case SystemRegister.icc_sgi1r_el1 where !access.isRead:
        sendVirtualSGI(from: v, value: v.register(access.register))
        v.frame.pointee.elr &+= 4
    case SystemRegister.cntp_ctl_el0:
        emulatePhysicalTimer(v, .control, access)
        v.frame.pointee.elr &+= 4
    case SystemRegister.cntp_cval_el0:
        emulatePhysicalTimer(v, .compare, access)
        v.frame.pointee.elr &+= 4
    case SystemRegister.cntp_tval_el0:
        emulatePhysicalTimer(v, .timerValue, access)
        v.frame.pointee.elr &+= 4
    default:
        injectUndefined(v)
    }
    return v.frame
}

private func interrupt(_ v: VCPU, _ cpu: PhysicalCPU) -> Resume {
    // After every store of the hypercall before it (GracePeriod: a freed piece is scrubbed once this
    // count moves).
    tern_memory_barrier()
    cpu.interrupts &+= 1
    var reschedule = false
    while true {
        let intid = GICv3.acknowledge()
        if intid >= GICv3.spurious { break }
        switch intid {
        case GICv3.virtualTimerPPI:
            virtualTimerFired(v, cpu)
        case GICv3.hypervisorTimerPPI:
            GenericTimer.cancelAlarm()
            syncPhysicalTimer(v, now: GenericTimer.now)
            reschedule = true
        case GICv3.maintenancePPI:
            timerInterruptsDeactivated(v)
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
    lockRunQueue(cpu.index)
    return leaveCPU()
}

/// Makes the guest take an Undefined Instruction exception at EL1, as if the instruction did not exist.
func injectUndefined(_ v: VCPU) {
    injectException(v, syndrome: 1 << 25)       // EC 0 (unknown), IL
}

/// Makes the guest take a synchronous external abort at the address it faulted on (FAR_EL2, its own
/// virtual address), from the level it ran at: the data or instruction abort class for that level, a
/// 32-bit instruction, fault status 0x10 and, for data, whether it wrote.
private func injectAbort(_ v: VCPU, instruction: Bool, write: Bool) {
    let fromEL0 = v.frame.pointee.spsr >> 2 & 3 == 0
    let exceptionClass: UInt64 = instruction ? (fromEL0 ? 0x20 : 0x21) : (fromEL0 ? 0x24 : 0x25)
    write_far_el1(read_far_el2())
    injectException(v, syndrome: exceptionClass << 26 | 1 << 25 | (write ? 1 << 6 : 0) | 0x10)
}

/// Enters the guest's EL1 synchronous vector with `syndrome` in ESR_EL1, as the hardware would: from
/// EL0 the lower-level vector, from EL1 the current level's (SP_EL0 or SP_ELx), all exceptions masked.
private func injectException(_ v: VCPU, syndrome: UInt64) {
    let f = v.frame
    let spsr = f.pointee.spsr
    write_elr_el1(f.pointee.elr)
    write_spsr_el1(spsr)
    write_esr_el1(syndrome)
    f.pointee.elr = syncVector(spsr: spsr)
    f.pointee.spsr = spsrEL1hMasked
}

/// Where a synchronous exception taken from the state `spsr` enters the guest's EL1 (of the vCPU here).
private func syncVector(spsr: UInt64) -> UInt64 {
    let fromEL = spsr >> 2 & 3
    let offset: UInt64 = fromEL == 0 ? 0x400 : (spsr & 1 != 0 ? 0x200 : 0)
    return read_vbar_el1() &+ offset
}

/// Ends the domain and picks something else to run here.
func kill(_ d: Domain) -> Resume {
    lockScheduler()
    crashDomain(d)
    return leaveCPU()
}

/// The exit path's second half when a trap handler chose `leaveCPU`: the frame is complete now.
@_cdecl("tern_schedule")
func ternSchedule() -> UnsafeMutablePointer<tern_frame> {
    thisCPUObject._withUnsafeGuaranteedRef { schedule($0) }
}

@_cdecl("tern_fatal")
func ternFatal(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> Never {
    let esr = read_esr_el2()
    withConsoleAfterFault { c in
        c.s("\n(tern) HYPERVISOR FAULT: ")
        c.s(ExceptionClass.name(esr >> 26 & 0x3F))
        c.s(" (kind ")
        c.dec(kind)
        c.s(") on the cpu with affinity ")
        c.hex(read_mpidr_el1() & CPUAffinity.fieldMask)
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
