// memory_op: TernCore's MemoryOp decides what a guest may place in its own physical address space;
// the calling Domain is its host, and places shared_info (in its own RAM) and grant frames (pages of
// the hypervisor's, in its grant window).
import TernArchAsm
import TernCore

// Out of the hypercall switch: its code would cost the hot hypercalls' paths.
@inline(never)
func memoryOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    var memory = RunningGuestMemory()
    let result = MemoryOp.handle(command, arg, &memory, d)
    flushDeferredStage2()
    if pieceSweepWanted { sweepUnusedPieces() }
    return result
}

/// The command a long reservation made from a multicall goes on with, if it stopped short (and
/// forgets it).
func takeMemoryOpContinuation() -> UInt64? {
    let cpu = thisCPU()
    defer { cpu.memoryOpContinuation = nil }
    return cpu.memoryOpContinuation
}

extension Domain: MemoryOpHost {
    func reservation(of id: DomainID) -> (current: UInt64, maximum: UInt64)? {
        withHeldDomain(id) { d in d.physMap.withLock { ($0.populatedPages, $0.maximumPages) } }
    }

    func populate(_ target: DomainID, at gfn: GuestFrameNumber, order: Int) -> XenError? {
        if target == id { return populate(at: gfn, order: order, byToolstack: false) }
        return withHeldDomain(target) { $0.populate(at: gfn, order: order, byToolstack: true) } ?? .ESRCH
    }

    func continuation(_ command: UInt64) -> UInt64 {
        // Made directly, the call is made again from its HVC with `command` in x0; made from a
        // multicall (as libxc sends every memory_op on arm64), the multicall goes on from its entry.
        let cpu = thisCPU()
        if cpu.inMulticall {
            cpu.memoryOpContinuation = command
        } else {
            cpu.current.unsafelyUnwrapped.frame.pointee.elr &-= 4
        }
        return command
    }

    func remove(_ target: DomainID, at gfn: GuestFrameNumber) -> XenError? {
        if target == id { return remove(at: gfn) }
        // Flushed while held: once let go, the domain may be released and its VMID given to another.
        return withHeldDomain(target) { d -> XenError? in
            let result = d.remove(at: gfn)
            flushDeferredStage2()
            return result
        } ?? .ESRCH
    }

    func mapForeign(_ owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError? {
        mapForeignPage(self, of: owner, frame: frame, at: gfn)
    }

    func grantFrameLimit(of owner: DomainID) -> Int? { withHeldDomain(owner, xenPV: true) { $0.grantFrameLimit } }

    func mapGrantFrame(of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError? {
        mapGrantTableFrame(self, of: owner, index, at: gfn)
    }

    /// shared_info lives in the guest's own page at `page`: Tern writes its fields in place, so the
    /// guest sees exactly the page it named, and nothing in its address space has to move.
    func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64 {
        guard let host = pinRAM(page, length: pageSize) else { return XenError.EINVAL.returnValue }
        tern_zero(host.raw, pageSize)
        tern_memory_barrier()
        events.withLock { $0.sharedInfo = host }
        publishWallClock(self)
        return 0
    }

    /// Grant-table frame `index` is a page of the hypervisor's, mapped at `page` inside the window the
    /// device tree's hypervisor node names.
    func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64 {
        let d = self
        return grants.withLock { g in
            guard index < d.grantFrameLimit else { return XenError.EINVAL.returnValue }
            if g.frames.count <= index {
                g.frames += [GrantFrame?](repeating: nil, count: index + 1 - g.frames.count)
            }
            if let placed = g.frames[index], placed.guest != nil {
                return placed.guest == page ? 0 : XenError.EBUSY.returnValue
            }
            guard !g.frames.contains(where: { $0?.guest == page }) else { return XenError.EBUSY.returnValue }
            if let made = g.frames[index] {
                // Made (and owned) already, for the toolstack: only its place is new.
                guard d.mapPage(page, to: made.host, permissions: [.read, .write]) else { return XenError.ENOMEM.returnValue }
                g.frames[index]!.guest = page
                return 0
            }
            guard let host = mapHypervisorFrame(d, at: page) else { return XenError.ENOMEM.returnValue }
            g.frames[index] = GrantFrame(guest: page, host: host)
            return 0
        }
    }
}

/// Maps a fresh zeroed frame of the hypervisor's into the domain at `page` (read-write, never
/// executable); the domain owns it from then on.
func mapHypervisorFrame(_ d: Domain, at page: GuestPhysicalAddress) -> HostPhysicalAddress? {
    guard let frame = allocateFrames(pages: 1) else { return nil }
    tern_zero(frame.raw, pageSize)
    guard d.mapPage(page, to: frame, permissions: [.read, .write], lent: true) else {
        freeFrames(frame, pages: 1)
        return nil
    }
    return frame
}
