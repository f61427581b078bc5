// The guest's side of the GICv3: its redistributor is woken and the timer PPI enabled by MMIO (trapped
// and emulated by the hypervisor); acknowledging and ending interrupts uses the virtual CPU interface.
import GuestKitAsm
import TernCore

public enum Interrupts {
    /// Sets up this vCPU's interrupt delivery for the virtual timer and unmasks IRQs.
    public static func start() {
        // The distributor is the domain's: its first vCPU turns it on.
        routeTimer(enablingDistributor: VCPU.index == 0)
        write_icc_sre_el1(read_icc_sre_el1() | 1)
        write_icc_pmr_el1(0xFF)
        write_icc_igrpen1_el1(1)
        guest_irq_enable()
    }
}

nonisolated(unsafe) public var undefinedInstructions = 0
/// Called (with IRQs masked) for every interrupt other than the virtual timer's, before its EOI.
nonisolated(unsafe) public var interruptHandler: ((UInt32) -> Void)?

extension Interrupts {
    /// Lets this vCPU's virtual timer interrupt through: group 1 on at the distributor, the
    /// redistributor awake, the PPI enabled. Also for a guest that writes the GIC at random (the
    /// fuzzer) and needs its timer to wake it from a sleep all the same.
    public static func routeTimer(enablingDistributor: Bool = true) {
        let rd = GuestLayout.gicRedistributors.raw + UInt64(VCPU.index) * VirtualRedistributor.stride
        if enablingDistributor { guest_store32(GuestLayout.gicDistributor.raw, 0x2) }   // EnableGrp1
        guest_store32(rd + 0x14, 0)                                                      // wake
        guest_store32(rd + 0x10000 + 0x100, 1 << GuestLayout.virtualTimerPPI)            // ISENABLER0
    }

    /// Enables an SGI or PPI for this vCPU at its redistributor.
    public static func enable(_ intid: UInt32) {
        let rd = GuestLayout.gicRedistributors.raw + UInt64(VCPU.index) * VirtualRedistributor.stride
        guest_store32(rd + 0x10000 + 0x100, 1 << intid)
    }

    /// Sends SGI `intid` to this vCPU (affinity 0.0.0.index).
    public static func sendToSelf(_ intid: UInt32) {
        send(intid, toVCPU: VCPU.index)
    }

    /// Sends SGI `intid` to vCPU `index` (affinity 0.0.0.index) of this domain.
    public static func send(_ intid: UInt32, toVCPU index: Int) {
        write_icc_sgi1r_el1(UInt64(intid) << 24 | 1 << UInt64(index))
    }
}
nonisolated(unsafe) public var unexpectedExceptions = 0

@_cdecl("guest_irq")
func guestIRQ() {
    while true {
        let intid = UInt32(read_icc_iar1_el1() & 0xFF_FFFF)
        if intid >= 1020 { return }
        if intid == GuestLayout.virtualTimerPPI {
            write_cntv_ctl_el0(0)                           // off until the next sleep rearms it, as Linux stops a one-shot timer
            timerFired[VCPU.index] = true
        } else if let handler = interruptHandler {
            handler(intid)
        }
        write_icc_eoir1_el1(UInt64(intid))
    }
}

/// Where a guest that provokes aborts on purpose (the fuzzer) takes them: given ESR, ELR and FAR, it
/// returns where to resume, or nil to crash as a guest without it does.
nonisolated(unsafe) public var abortHandler: ((_ esr: UInt64, _ elr: UInt64, _ far: UInt64) -> UInt64?)?

/// Synchronous exceptions at EL1: an undefined instruction (what the hypervisor injects for things a
/// guest may not do) is counted and skipped; an abort goes to abortHandler if there is one; anything
/// else is reported and the domain crashes.
@_cdecl("guest_exception")
func guestException(_ esr: UInt64, _ elr: UInt64, _ far: UInt64) -> UInt64 {
    if esr >> 26 == 0 {
        undefinedInstructions += 1
        return elr + 4
    }
    if esr >> 26 == 0x25 || esr >> 26 == 0x21, let resume = abortHandler?(esr, elr, far) { return resume }
    unexpectedExceptions += 1
    if esr >> 26 == 0x25 || esr >> 26 == 0x21 {
        // An abort the hypervisor gave us for touching what is not there: nothing to recover here.
        let what = esr >> 26 == 0x25 ? (esr & (1 << 6) != 0 ? "data abort (write)" : "data abort (read)") : "instruction abort"
        print("guest: \(what) at \(hex(far)), fault status \(hex(esr & 0x3F)), pc \(hex(elr)); crashing")
    } else {
        print("guest: unexpected exception esr=\(hex(esr)) elr=\(hex(elr)) far=\(hex(far))")
    }
    Xen.shutdown(.crash)
}

public func hex(_ v: UInt64) -> String {
    let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
    var s = ""
    var started = false
    for i in stride(from: 60, through: 0, by: -4) {
        let d = Int(v >> UInt64(i) & 0xF)
        if d != 0 || started || i == 0 {
            started = true
            s.append(digits[d])
        }
    }
    return "0x" + s
}
