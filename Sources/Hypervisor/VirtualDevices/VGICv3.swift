// Virtual interrupts: raising them for a vCPU, handing them to the hardware's list registers, and the
// emulated distributor and redistributors a guest programs by MMIO.
import TernArch
import TernArchAsm
import TernCore

/// Raises an SGI or PPI for `v`, wherever it is.
func raiseInterrupt(_ v: VCPU, _ intid: Int) {
    // For the vCPU running here (a self-IPI, its own timer or event) raising and placing it in a list
    // register is one hold of the vGIC lock.
    if v.runningOn == thisCPUIndex() { return raiseInterruptHere(v, intid) }
    let deliverable = v.domain.withVGIC { v.redistributor.raise(intid) }
    guard deliverable else { return }
    deliverTo(v)
}

/// Raises an SGI or PPI for `v`, which is running on this CPU (the vCPU that trapped here): no need
/// to find out where it is.
@inline(__always) func raiseInterruptHere(_ v: VCPU, _ intid: Int) {
    // Only its own SGIs and PPIs changed: SPIs pending for it were placed when they were raised.
    v.domain.withVGIC { if v.redistributor.raise(intid) { placePendingInterrupts(v, shared: false) } }
}

/// `v` has something deliverable: put it in a list register now, or get its CPU to, or wake it.
/// Looking at another vCPU's state takes the lock of its run queue: `v` may be blocking right now on
/// another CPU, and blocking (which checks for pending interrupts, then switches out) happens under
/// that lock, so this sees either a vCPU that will notice the interrupt or one that is already off its CPU.
private func deliverTo(_ v: VCPU) {
    if v.runningOn == thisCPUIndex() {
        flushPendingInterrupts(v)
        return
    }
    let home = lockHome(v)
    if v.runningOn >= 0 {
        kickCPU(v.runningOn)
    } else if v.blocked != .none {
        wake(v)
    }
    unlockRunQueue(home)
}

/// Raises an SPI for the domain (a virtual device's line went up): it goes to the vCPU its route names.
func raiseSharedInterrupt(_ d: Domain, _ intid: Int) {
    let target = d.withVGIC { d.distributor.raise(intid) ? d.distributor.target(of: intid) : -1 }
    if target >= 0 && target < d.vcpus.count { deliverTo(d.vcpus[target]) }
}

/// Moves `v`'s deliverable interrupts into free list registers; `v` must be running on this CPU.
/// What does not fit waits, and the underflow maintenance interrupt says when room appears.
func flushPendingInterrupts(_ v: VCPU) {
    v.domain.withVGIC { placePendingInterrupts(v, shared: true) }
}

/// flushPendingInterrupts' work, with the domain's vGIC lock held.
@inline(__always) private func placePendingInterrupts(_ v: VCPU, shared withShared: Bool) {
    let d = v.domain
    do {
        let local = v.redistributor.deliverable
        let shared = withShared ? d.distributor.deliverable(to: v.index) : 0
        if local == 0 && shared == 0 { return }
        var empty = read_ich_elrsr_el2() & 0xF
        // Only a list register in use can already hold an interrupt (ELRSR marks the others).
        let inUse = ~empty & 0xF
        var waiting = false
        @inline(__always) func place(_ bits: UInt64, base: Int) {
            var bits = bits
            while bits != 0 {
                let intid = base + bits.trailingZeroBitCount
                if !mergeIntoListRegister(intid, among: inUse) {
                    if empty == 0 {
                        waiting = true
                        return
                    }
                    let priority = intid < 32 ? v.redistributor.priority(of: intid) : d.distributor.priority(of: intid)
                    let eoi = isTimerInterrupt(intid) ? listRegisterEOI : 0
                    tern_write_lr(Int32(empty.trailingZeroBitCount), listRegister(intid: UInt32(intid), priority: priority) | eoi)
                    empty &= empty - 1
                }
                if intid < 32 { v.redistributor.delivered(intid) } else { d.distributor.delivered(intid) }
                bits &= bits - 1
            }
        }
        place(UInt64(local), base: 0)
        place(shared, base: 32)
        // Underflow maintenance while something waits for room. A look at local interrupts only leaves
        // it as it is otherwise: an SPI may still be waiting for room.
        if waiting { write_ich_hcr_el2(1 | 1 << 1) } else if withShared { write_ich_hcr_el2(1) }
    }
}

/// An interrupt already in a list register must not get a second one (the architecture leaves two
/// list registers with one INTID unpredictable): it becomes pending there, on top of being active.
private func mergeIntoListRegister(_ intid: Int, among inUse: UInt64) -> Bool {
    guard let (lr, value) = listRegister(holding: intid, among: inUse) else { return false }
    tern_write_lr(lr, value | 1 << 62)
    return true
}

/// The list registers of the vCPU running here that may hold an interrupt (ELRSR marks the others).
@inline(__always) func listRegistersInUse() -> UInt64 { ~read_ich_elrsr_el2() & 0xF }

/// The list register (of the vCPU running here, among those `inUse`) that holds `intid` pending or
/// active, with its value; with `orFinished`, also one the guest has deactivated whose EOI
/// maintenance Tern has not taken yet (the timers').
@inline(__always)
func listRegister(holding intid: Int, among inUse: UInt64, orFinished: Bool = false) -> (Int32, UInt64)? {
    var candidates = inUse
    while candidates != 0 {
        let lr = Int32(candidates.trailingZeroBitCount)
        candidates &= candidates - 1
        let value = tern_read_lr(lr)
        guard value & 0xFFFF_FFFF == UInt64(intid), value >> 62 != 0 || orFinished && value & listRegisterEOI != 0 else { continue }
        return (lr, value)
    }
    return nil
}

/// Whether a WFI would end at once: an interrupt is pending in a list register or waiting for one.
func hasPendingInterrupt(_ v: VCPU) -> Bool {
    if v.redistributor.deliverable != 0 || v.domain.distributor.deliverable(to: v.index) != 0 { return true }
    for lr in 0 ..< 4 where tern_read_lr(Int32(lr)) >> 62 == 1 { return true }
    return false
}

/// A guest's ICC_SGI1R_EL1 write: TernCore's VirtualSGI picks the vCPUs, each gets the SGI raised.
func sendVirtualSGI(from v: VCPU, value: UInt64) {
    let intid = VirtualSGI.intid(of: value)
    // A self-IPI, the measured case: the value names this vCPU alone.
    if VirtualSGI.namesOnly(v.index, value) { return raiseInterruptHere(v, intid) }
    let d = v.domain
    var targets = VirtualSGI.targets(of: value, from: v.index, d)
    while targets != 0 {
        let index = targets.trailingZeroBitCount
        targets &= targets - 1
        raiseInterrupt(d.vcpus[index], intid)
    }
}

/// Its vCPUs as VirtualSGI asks about them (vcpuCount and isOnline serve event channels and vcpu_op too).
extension Domain: VirtualCPUs {}

/// A trapped access to the distributor, `offset` bytes into it (inlined: the busiest trapped device).
@inline(__always)
func emulateDistributor(_ v: VCPU, offset: Int, access: DataAbort) -> Bool {
    let d = v.domain
    if access.isWrite {
        let value = v.register(access.register)
        if let ready = d.withVGIC({ d.distributor.write(offset: offset, size: access.size, value: value) }) {
            deliverReadySPIs(d, base: ready.base, ready.bits)
        }
    } else {
        // Reads take no lock: every register is one aligned word of state that writers change in
        // place (under the lock), so a read sees either the old value or the new one.
        let value = d.distributor.read(offset: offset, size: access.size) ?? 0
        v.setRegister(access.register, access.loadedValue(value))
    }
    return true
}

/// SPIs a distributor write made deliverable (bit n: INTID base + n), each to the vCPU it is routed
/// to. Out of line: the trapped read beside it is the measured path.
@inline(never) private func deliverReadySPIs(_ d: Domain, base: Int, _ ready: UInt32) {
    var bits = ready
    while bits != 0 {
        let target = d.withVGIC { d.distributor.target(of: base + bits.trailingZeroBitCount) }
        if target < d.vcpus.count { deliverTo(d.vcpus[target]) }
        bits &= bits - 1
    }
}

/// A trapped access to the redistributors, `offset` bytes into their frames (two per vCPU).
func emulateRedistributors(_ v: VCPU, offset: UInt64, access: DataAbort) -> Bool {
    let d = v.domain
    let index = Int(offset / VirtualRedistributor.stride)
    guard index < d.vcpus.count else { return false }
    let within = Int(offset % VirtualRedistributor.stride)
    let target = d.vcpus[index]
    if access.isWrite {
        let value = v.register(access.register)
        let ready = d.withVGIC { target.redistributor.write(offset: within, size: access.size, value: value) }
        if ready != 0 { deliverTo(target) }
    } else {
        let value = target.redistributor.read(offset: within, size: access.size) ?? 0
        v.setRegister(access.register, access.loadedValue(value))
    }
    return true
}
