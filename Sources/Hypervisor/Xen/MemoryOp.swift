// memory_op: what a guest may place in its own physical address space. Linux on Arm asks for its
// shared_info page (a failure is a BUG() there) and for its grant-table frames, both with
// XENMEM_add_to_physmap. Nothing here touches memory outside the calling domain.
import TernArchAsm
import TernCore


func memoryOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    switch MemoryOpCommand(rawValue: command) {
    case .add_to_physmap:
        // struct xen_add_to_physmap { domid_t domid; uint16_t size; unsigned int space;
        //                             xen_ulong_t idx; xen_pfn_t gpfn; }
        var request = (UInt64(0), UInt64(0), UInt64(0))
        guard GuestMemory.read(&request, from: arg) else {
            return XenError.EFAULT.returnValue
        }
        guard isSelf(UInt16(truncatingIfNeeded: request.0), d) else { return XenError.EPERM.returnValue }
        let space = UInt32(truncatingIfNeeded: request.0 >> 32)
        guard let page = GuestFrameNumber(guest: request.2)?.address else { return XenError.EINVAL.returnValue }
        switch XenMapSpace(rawValue: space) {
        case .shared_info:
            guard request.1 == 0 else { return XenError.EINVAL.returnValue }
            return placeSharedInfo(d, at: page)
        case .grant_table:
            return placeGrantFrame(d, index: request.1, at: page)
        default:
            return XenError.ENOSYS.returnValue
        }
    case .maximum_reservation, .current_reservation:
        // The argument is a domid_t; the answer is in pages. Tern domains never grow or shrink.
        guard let dom = GuestMemory.load32(VirtualAddress(arg.raw & ~3)) else { return XenError.EFAULT.returnValue }
        let id = UInt16(truncatingIfNeeded: arg.raw & 2 != 0 ? dom >> 16 : dom)
        guard isSelf(id, d) else { return XenError.EPERM.returnValue }
        return d.memory.size / pageSize
    default:
        return XenError.ENOSYS.returnValue
    }
}

/// shared_info lives in the guest's own page at `page`: Tern writes its fields in place, so the guest
/// sees exactly the page it named, and nothing in its address space has to move.
private func placeSharedInfo(_ d: Domain, at page: GuestPhysicalAddress) -> UInt64 {
    guard let host = d.hostAddress(ofRAM: page, length: pageSize) else { return XenError.EINVAL.returnValue }
    tern_zero(host.raw, pageSize)
    tern_memory_barrier()
    d.events.withLock { $0.sharedInfo = host }
    publishWallClock(d)
    return 0
}

/// Grant-table frame `index` is a page of the hypervisor's, mapped at `page` inside the window the
/// device tree's hypervisor node names. A frame once placed stays where it is.
private func placeGrantFrame(_ d: Domain, index: UInt64, at page: GuestPhysicalAddress) -> UInt64 {
    guard index < UInt64(GrantTableOp.maximumFrames) else { return XenError.EINVAL.returnValue }
    let window = GuestLayout.grantTable.raw
    guard page.raw >= window, page.raw < window + GuestLayout.grantTableSize else { return XenError.EINVAL.returnValue }
    return d.grants.withLock { g in
        if g.frames.count <= Int(index) {
            g.frames += [GrantFrame?](repeating: nil, count: Int(index) + 1 - g.frames.count)
        }
        if let placed = g.frames[Int(index)] {
            return placed.guest == page ? 0 : XenError.EBUSY.returnValue
        }
        guard !g.frames.contains(where: { $0?.guest == page }) else { return XenError.EBUSY.returnValue }
        guard let host = mapHypervisorFrame(d, at: page) else { return XenError.ENOMEM.returnValue }
        g.frames[Int(index)] = GrantFrame(guest: page, host: host)
        return 0
    }
}

/// Maps a fresh zeroed frame of the hypervisor's into the domain at `page` (read-write, never
/// executable); the domain owns it from then on.
func mapHypervisorFrame(_ d: Domain, at page: GuestPhysicalAddress) -> HostPhysicalAddress? {
    guard let frame = allocateFrames(pages: 1) else { return nil }
    tern_zero(frame.raw, pageSize)
    let mapped = d.physMap.withLock { m in
        do throws(PageTableError) {
            try m.stage2.map(page, to: frame, size: pageSize, type: .normal, permissions: [.read, .write], memory: &m.tables)
        } catch {
            return false
        }
        tern_stage2_sync()
        m.ownedFrames.append(frame)
        return true
    }
    guard mapped else {
        freeFrames(frame, pages: 1)
        return nil
    }
    return frame
}
