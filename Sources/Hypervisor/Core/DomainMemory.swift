// A domain's memory after it is built, as memory_op changes it: RAM given back and taken again (a
// balloon), the toolstack filling a domain it creates, and other domains' pages mapped in (foreign
// mappings). A domain built at boot has one block of host frames (contiguous, so hypercalls reach it by
// arithmetic); populating maps part of it, giving back leaves a hole in the stage 2 and the frame in
// the block. A toolstack-built domain gets its RAM in 2 MiB pieces as it populates it, at most as many
// as max_pages fills; a piece whose every page it gives back, and that nothing else uses, goes back to
// the heap (RAMPieces.swift). Its magic pages (console, xenstore) are frames lent to it, as Tern's
// console ring.
// Everything here runs under the domain's physMap lock, and the pages of another domain are held
// (DomainReferences) for as long as they are mapped.
import TernArchAsm
import TernCore


extension Domain {
    /// populate_physmap: the 2^order pages at `gfn` get memory (their part of the reservation, or a
    /// lent frame for a magic page), zeroed, read-write-execute as RAM is.
    /// `byToolstack`: the control domain fills another domain (only it may give magic pages, which
    /// are frames of the hypervisor's beyond the domain's RAM).
    func populate(at gfn: GuestFrameNumber, order: Int, byToolstack: Bool) -> XenError? {
        let d = self
        let pieceOrder = 9
        if order > pieceOrder && memory.size == 0 {
            // A 1 GiB extent of a toolstack-built domain: its 2 MiB pieces one by one, once it is sure
            // max_pages allows them all.
            let fits = physMap.withLock { $0.populatedPages + UInt64(1) << UInt64(order) <= $0.maximumPages }
            guard fits else { return .ENOMEM }
            for k in 0 ..< UInt64(1) << UInt64(order - pieceOrder) {
                if let e = populate(at: GuestFrameNumber(gfn.raw + k << UInt64(pieceOrder)), order: pieceOrder,
                                    byToolstack: byToolstack) { return e }
            }
            return nil
        }
        let pages = UInt64(1) << UInt64(order)
        let ipa = gfn.address
        let size = pages * pageSize
        return physMap.withLock { m -> XenError? in
            guard m.populatedPages + pages <= m.maximumPages else { return .ENOMEM }
            if ipa.raw >= d.ramBase.raw && ipa.raw - d.ramBase.raw < GuestLayout.ramMaximum {
                if d.memory.size == 0, let e = d.addRAMPieces(for: ipa, size: size, &m) { return e }
                // A piece given for a populate that fails has no pages: the sweep takes it back.
                func failed(_ e: XenError) -> XenError {
                    if d.memory.size == 0 {
                        m.hasUnusedPieces = true
                        pieceSweepWanted = true
                    }
                    return e
                }
                guard let host = d.hostAddress(ofRAM: ipa, length: size) else { return failed(.ENOMEM) }
                tern_zero(host.raw, size)
                do throws(PageTableError) {
                    try m.stage2.map(ipa, to: host, size: size, type: .normal, permissions: [.read, .write, .execute], memory: &m.tables)
                } catch {
                    return failed(error == .outOfMemory ? .ENOMEM : .EBUSY)
                }
                if d.memory.size == 0 { ramPieceTable.populated(pieceBase(host), pages: Int(pages), owner: d.pieceOwner) }
            } else if byToolstack && order == 0 && ipa.raw >= MagicPages.base.raw && ipa.raw - MagicPages.base.raw < MagicPages.size {
                guard let frame = allocateFrames(pages: 1) else { return .ENOMEM }
                do throws(PageTableError) {
                    try m.stage2.map(ipa, to: frame, size: pageSize, type: .normal, permissions: [.read, .write], memory: &m.tables)
                } catch {
                    freeScrubbedFrames(frame, pages: 1)
                    return error == .outOfMemory ? .ENOMEM : .EBUSY
                }
                m.ownedFrames.append(frame)
            } else {
                // Tern's domains have RAM in bank 0 and the magic pages; Xen's second RAM bank is not.
                return .EINVAL
            }
            tern_stage2_sync()
            m.populatedPages += pages
            return nil
        }
    }

    /// A toolstack-built domain's RAM pieces under `[ipa, ipa + size)`, allocated where there are none
    /// yet. At most as many pieces as max_pages fills, so pages given back and populated elsewhere
    /// cannot make it hold more host memory than that.
    fileprivate func addRAMPieces(for ipa: GuestPhysicalAddress, size: UInt64, _ m: inout PhysMap) -> XenError? {
        let first = (ipa.raw - ramBase.raw) / ramPieceSize
        let last = (ipa.raw - ramBase.raw + size - 1) / ramPieceSize
        guard last < UInt64(ramPieces.count) else { return .EINVAL }
        for i in Int(first) ... Int(last) where ramPieces[i] == 0 {
            guard UInt64(m.ramPieceCount + 1) * (ramPieceSize / pageSize) <= alignUp(m.maximumPages, ramPieceSize / pageSize),
                  let piece = allocateFrames(pages: Int(ramPieceSize / pageSize), alignment: ramPieceSize) else { return .ENOMEM }
            ramPieces[i] = piece.raw
            ramPieceTable.assign(piece.raw, owner: pieceOwner)
            m.ramPieceCount += 1
        }
        return nil
    }

    /// decrease_reservation and remove_from_physmap: another domain's page mapped at `gfn` is let go;
    /// a page of its own RAM leaves a hole. Its frame stays in the reservation, for a later populate,
    /// unless it was the last page of a piece nothing else uses: that piece goes back to the heap once
    /// the memory_op is over (RAMPieces.swift).
    func remove(at gfn: GuestFrameNumber) -> XenError? {
        let d = self
        var released: ForeignMapping<Domain>?
        let result = physMap.withLock { m -> XenError? in
            if let f = m.foreign.remove(gfn) {
                _ = m.stage2.unmapPage(gfn.address, memory: &m.tables)
                forgetTranslations(d)
                released = f
                return nil
            }
            guard let t = m.stage2.translate(gfn.address, memory: m.tables) else { return .ENOENT }
            // Lent frames (grant frames, the console ring, magic pages) stay the domain's until it dies;
            // a grant it maps (even of its own page) is not a page it has.
            guard !t.borrowed, d.hostAddress(ofRAM: gfn.address, length: pageSize) == t.pa, m.populatedPages > 0
            else { return .EINVAL }
            let removed = m.stage2.removePage(gfn.address, memory: &m.tables) { _ in forgetTranslations(d) }
            guard removed != nil else { return .ENOMEM }
            deferStage2Flush(d)
            m.populatedPages -= 1
            if d.memory.size == 0 && ramPieceTable.removed(pieceBase(t.pa), owner: d.pieceOwner) {
                m.hasUnusedPieces = true
                pieceSweepWanted = true
            }
            return nil
        }
        if let f = released {
            f.owner.endUse(f.frame)
            f.owner.withReferences { DomainReferences.drop($0) }
        }
        return result
    }

    /// The host frame of this domain's own page at `gfn` (RAM it has, or a frame lent to it); nil for a
    /// hole, another domain's page mapped there, or nothing.
    func ownPage(_ gfn: GuestFrameNumber) -> HostPhysicalAddress? {
        let d = self
        return physMap.withLock { m in d.ownPage(gfn, m) }
    }

    /// `ownPage`, under the physMap lock.
    func ownPage(_ gfn: GuestFrameNumber, _ m: PhysMap) -> HostPhysicalAddress? {
        guard let t = m.stage2.translate(gfn.address, memory: m.tables), t.type == .normal, !t.borrowed else { return nil }
        if hostAddress(ofRAM: gfn.address, length: pageSize) == t.pa { return t.pa }
        for frame in m.ownedFrames where frame == t.pa { return frame }
        return nil
    }

    /// Maps `owner`'s frame `frame` (held: the caller took a reference, which the mapping keeps) at
    /// this domain's `gfn`, which must be empty (a ballooned-out page, as Linux gives privcmd).
    func mapForeign(_ owner: Domain, frame: HostPhysicalAddress, at gfn: GuestFrameNumber) -> XenError? {
        // The table may have to grow, its three arrays at once while the old ones live: the heap gets
        // room for them first (never from inside an allocation).
        ensureHeapHeadroom(UInt64(4 * physMap.withLock { $0.foreign.nextArrayBytes }))
        let d = self
        return physMap.withLock { m -> XenError? in
            guard m.foreign.lookup(gfn) == nil else { return .EBUSY }
            do throws(PageTableError) {
                try m.stage2.map(gfn.address, to: frame, size: pageSize, type: .normal, permissions: [.read, .write],
                                 borrowed: true, memory: &m.tables)
            } catch {
                return error == .outOfMemory ? .ENOMEM : .EBUSY
            }
            guard m.foreign.insert(gfn, ForeignMapping(owner: owner, frame: frame)) == .added else {
                // Past what the table holds: the mapping goes again, and the caller learns why.
                _ = m.stage2.unmapPage(gfn.address, memory: &m.tables)
                forgetTranslations(d)
                return .ENOMEM
            }
            tern_stage2_sync()
            return nil
        }
    }

    /// A released domain's RAM pieces go back, scrubbed, `bytes` of them at most (a reclaim step).
    func freeRAMPieces(upTo bytes: UInt64) {
        let d = self
        physMap.withLock { m in
            var left = bytes
            for i in 0 ..< d.ramPieces.count where d.ramPieces[i] != 0 && left >= ramPieceSize {
                ramPieceTable.release(d.ramPieces[i])
                freeFrames(HostPhysicalAddress(d.ramPieces[i]), pages: Int(ramPieceSize / pageSize))
                d.ramPieces[i] = 0
                m.ramPieceCount -= 1
                left -= ramPieceSize
            }
        }
    }

    /// The domain is being released: the other domains' pages it mapped are let go (its stage 2 goes
    /// with it).
    func dropForeignMappings() {
        let all = physMap.withLock { $0.foreign.removeAll() }
        for (_, f) in all {
            f.owner.endUse(f.frame)
            f.owner.withReferences { DomainReferences.drop($0) }
        }
    }
}

/// `owner`'s page at `frame` into `caller`'s space at `gfn` (XENMAPSPACE_gmfn_foreign).
func mapForeignPage(_ caller: Domain, of owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError? {
    guard let o = holdDomain(owner, live: true) else { return .ESRCH }
    guard let host = o.useRAM(frame, mapped: true) else {
        o.withReferences { DomainReferences.drop($0) }
        return .EINVAL
    }
    let result = caller.mapForeign(o, frame: host, at: gfn)
    if result != nil {
        o.endUse(host)
        o.withReferences { DomainReferences.drop($0) }
    }
    return result
}

/// Grant-table frame `index` of `owner` (made now if it has not been) into `caller`'s space at `gfn`:
/// acquire_resource, with which the toolstack seeds a new domain's reserved grants.
func mapGrantTableFrame(_ caller: Domain, of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError? {
    guard let o = holdDomain(owner, live: true, xenPV: true) else { return .ESRCH }
    let frame: HostPhysicalAddress? = o.grants.withLock { g in
        if g.frames.count <= index { g.frames += [GrantFrame?](repeating: nil, count: index + 1 - g.frames.count) }
        if let made = g.frames[index] { return made.host }
        guard let frame = allocateFrames(pages: 1) else { return nil }
        o.physMap.withLock { $0.ownedFrames.append(frame) }
        g.frames[index] = GrantFrame(guest: nil, host: frame)
        return frame
    }
    guard let frame else {
        o.withReferences { DomainReferences.drop($0) }
        return .ENOMEM
    }
    let result = caller.mapForeign(o, frame: frame, at: gfn)
    if result != nil { o.withReferences { DomainReferences.drop($0) } }
    return result
}

/// A page of `d`'s own RAM left its stage 2 (a balloon gives back hundreds in one call): its frame
/// stays `d`'s at least until this CPU has taken an interrupt or switched (a piece given back waits for
/// that: GracePeriod), or until `d` is released (which flushes its VMID), so a stale TLB entry can reach
/// nothing of anyone else's, and the TLBs are told once, when the memory_op is done: before the calling
/// vCPU runs on and before a later call can map something else at that address. Meanwhile `d`'s other
/// vCPUs may still reach that frame, their own, through what their TLBs hold.
func deferStage2Flush(_ d: Domain) {
    let cpu = thisCPU()
    if let pending = cpu.deferredStage2Flush, pending !== d { forgetTranslations(pending) }
    cpu.deferredStage2Flush = d
}

func flushDeferredStage2() {
    let cpu = thisCPU()
    guard let d = cpu.deferredStage2Flush else { return }
    cpu.deferredStage2Flush = nil
    forgetTranslations(d)
}
