// Virtual interrupts: raising them for a vCPU, handing them to the hardware's list registers, and the
// emulated distributor and redistributors a guest programs by MMIO.
import TernArch
import TernArchAsm
import TernCore

/// Raises an SGI or PPI for `v`, wherever it is.
func raiseInterrupt(_ v: VCPU, _ intid: Int) {
    let deliverable = v.domain.withVGIC { v.redistributor.raise(intid) }
    guard deliverable else { return }
    deliverTo(v)
}

/// `v` has something deliverable: put it in a list register now, or get its CPU to, or wake it.
private func deliverTo(_ v: VCPU) {
    let me = thisCPU()
    if v.runningOn == me.index {
        flushPendingInterrupts(v)
    } else if v.runningOn >= 0 {
        GICv3.kick(cpu: v.runningOn)
    } else if v.blocked != .none {
        lockScheduler()
        wake(v)
        unlockScheduler()
    }
}

/// Moves `v`'s deliverable interrupts into free list registers; `v` must be running on this CPU.
/// What does not fit waits, and the underflow maintenance interrupt says when room appears.
func flushPendingInterrupts(_ v: VCPU) {
    let d = v.domain
    d.withVGIC {
        var bits = v.redistributor.deliverable
        if bits == 0 { return }
        var empty = read_ich_elrsr_el2() & 0xF
        while bits != 0 && empty != 0 {
            let intid = bits.trailingZeroBitCount
            let lr = empty.trailingZeroBitCount
            tern_write_lr(Int32(lr), listRegister(intid: UInt32(intid), priority: v.redistributor.priority(of: intid)))
            v.redistributor.delivered(intid)
            bits &= bits - 1
            empty &= empty - 1
        }
        write_ich_hcr_el2(bits != 0 ? 1 | 1 << 1 : 1)
    }
}

/// Whether a WFI would end at once: an interrupt is pending in a list register or waiting for one.
func hasPendingInterrupt(_ v: VCPU) -> Bool {
    if v.redistributor.deliverable != 0 { return true }
    for lr in 0 ..< 4 where tern_read_lr(Int32(lr)) >> 62 == 1 { return true }
    return false
}

/// A guest's ICC_SGI1R_EL1 write: send an SGI to the vCPUs it names.
func sendVirtualSGI(from v: VCPU, value: UInt64) {
    let intid = Int(value >> 24 & 0xF)
    let d = v.domain
    if value & (1 << 40) != 0 {                      // IRM: everyone but me
        for target in d.vcpus where target !== v && target.online { raiseInterrupt(target, intid) }
        return
    }
    let aff1 = value >> 16 & 0xFF, aff2 = value >> 32 & 0xFF, aff3 = value >> 48 & 0xFF
    guard aff1 == 0, aff2 == 0, aff3 == 0 else { return }
    let targets = value & 0xFFFF
    for target in d.vcpus where target.index < 16 && targets & (1 << UInt64(target.index)) != 0 {
        raiseInterrupt(target, intid)
    }
}

/// A trapped access to the virtual GIC's MMIO. Returns false when the address is not the GIC's.
func emulateGIC(_ v: VCPU, ipa: GuestPhysicalAddress, access: DataAbort) -> Bool {
    let d = v.domain
    let dist = GuestLayout.gicDistributor.raw
    let rdist = GuestLayout.gicRedistributors.raw
    if ipa.raw >= dist && ipa.raw < dist + VirtualDistributor.size {
        let offset = Int(ipa.raw - dist)
        if access.isWrite {
            let value = v.register(access.register)
            _ = d.withVGIC { d.distributor.write(offset: offset, size: access.size, value: value) }
        } else {
            let value = d.withVGIC { d.distributor.read(offset: offset, size: access.size) } ?? 0
            v.setRegister(access.register, access.loadedValue(value))
        }
        return true
    }
    let span = UInt64(d.vcpus.count) * VirtualRedistributor.stride
    if ipa.raw >= rdist && ipa.raw < rdist + span {
        let index = Int((ipa.raw - rdist) / VirtualRedistributor.stride)
        let offset = Int((ipa.raw - rdist) % VirtualRedistributor.stride)
        let target = d.vcpus[index]
        if access.isWrite {
            let value = v.register(access.register)
            let ready = d.withVGIC { target.redistributor.write(offset: offset, size: access.size, value: value) }
            if ready != 0 { deliverTo(target) }
        } else {
            let value = d.withVGIC { target.redistributor.read(offset: offset, size: access.size) } ?? 0
            v.setRegister(access.register, access.loadedValue(value))
        }
        return true
    }
    return false
}
