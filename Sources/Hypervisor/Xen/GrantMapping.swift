// Using another domain's grants, as TernCore's GrantTableOp asks (it reads and checks the guest's
// structures): a map puts a granted frame into the caller's stage 2 at the address it names, an unmap
// takes it out again, and a copy moves bytes between granted frames and the caller's own. The granting domain's entry (in its grant frames, which it writes too)
// says who may do what; GTF_reading/GTF_writing tell it the frame is in use. A domain whose frames
// others still map keeps its memory after it dies, until the last mapping goes (as on Xen), so no
// stage 2 ever points at memory that has been given to someone else.
import TernArchAsm
import TernCore

/// Host address of grant entry `ref` in a table; nil when its frame was never placed.
private func entryAddress(_ table: DomainGrants, _ ref: GrantRef) -> HostPhysicalAddress? {
    let frame = ref.frameIndex
    guard frame < table.frames.count, let placed = table.frames[frame] else { return nil }
    return placed.host + ref.offsetInFrame
}

/// Claims entry `ref` of `g` for `user` (compare-and-swap against the guest's own updates) and returns
/// the host address of the granted frame, which must be g's RAM; sets GTF_reading (and GTF_writing).
/// `table` is g's, under its grants lock.
private func claim(_ g: Domain, _ table: DomainGrants, _ ref: GrantRef, by user: DomainID,
                   readOnly: Bool) -> Result<HostPhysicalAddress, GrantStatusError> {
    guard let entry = entryAddress(table, ref) else { return .failure(GrantStatusError(.badGrantRef)) }
    var refused: GrantStatusError?
    let claimed = SharedWord.update(tern_load32(entry.raw), { header in
        switch GrantAccess.claim(header: header, by: user, readOnly: readOnly, mark: true) {
        case .failure(let e):
            refused = e
            return nil
        case .success(let wanted):
            refused = nil
            return wanted == header ? nil : wanted
        }
    }, exchange: { tern_compare_exchange32(entry.raw, $0, $1) })
    if let refused { return .failure(refused) }
    // A guest that keeps rewriting the entry only makes its own grant unusable.
    guard claimed != nil else { return .failure(GrantStatusError(.generalError)) }
    // The frame is read after the claim: a guest may change it only while the entry is unused.
    tern_memory_barrier()
    let gfn = GuestFrameNumber(UInt64(tern_load32(entry.raw + 4)))      // 32 bits: always below 2^36
    // Its RAM, or a page lent to it (a toolstack-built domain's console and xenstore pages), counted as
    // used so its piece stays g's until the use ends (`relinquish`).
    guard let frame = g.useRAM(gfn, mapped: false) else {
        return .failure(GrantStatusError(.badPage))
    }
    return .success(frame)
}

/// Takes a use of grant `ref` of `g` for `user`: counted in g's ActiveGrants and marked in the entry
/// (GTF_reading, and GTF_writing unless read-only) for as long as it lasts, as Xen does for maps and
/// copies alike, so the granter cannot end the grant under it. Returns the granted frame.
private func acquire(_ g: Domain, _ ref: GrantRef, by user: DomainID, readOnly: Bool) -> Result<HostPhysicalAddress, GrantStatusError> {
    g.grants.withLock { table in
        guard entryAddress(table, ref) != nil else { return .failure(GrantStatusError(.badGrantRef)) }
        guard table.active.add(ref, readOnly: readOnly) else { return .failure(GrantStatusError(.generalError)) }
        let r = claim(g, table, ref, by: user, readOnly: readOnly)
        if case .failure = r { release(table, ref, flags: table.active.remove(ref, readOnly: readOnly)) }
        return r
    }
}

/// Gives back a use taken with `acquire`.
private func relinquish(_ g: Domain, _ ref: GrantRef, frame: HostPhysicalAddress, readOnly: Bool) {
    g.grants.withLock { table in release(table, ref, flags: table.active.remove(ref, readOnly: readOnly)) }
    g.endUse(frame)
}

/// Clears `flags` in entry `ref` (those no mapping needs any more) of a table under its grants lock.
private func release(_ table: DomainGrants, _ ref: GrantRef, flags: UInt16) {
    guard flags != 0, let entry = entryAddress(table, ref) else { return }
    _ = SharedWord.update(tern_load32(entry.raw), { $0 & UInt32(flags) != 0 ? $0 & ~UInt32(flags) : nil },
                          exchange: { tern_compare_exchange32(entry.raw, $0, $1) })
}

extension Domain: GrantTableHost {
    var placedFrames: Int { grants.withLock { $0.frames.reduce(0) { $0 + ($1 == nil ? 0 : 1) } } }

    func map(_ ref: GrantRef, of granter: DomainID, at address: GuestPhysicalAddress, readOnly: Bool,
             device: Bool) -> Result<(handle: UInt32, busAddress: UInt64), GrantStatusError> {
        let d = self
        return withHeldDomain(granter, xenPV: true) { g -> Result<(handle: UInt32, busAddress: UInt64), GrantStatusError> in
            // The handle first, as Xen: a full table answers GNTST_no_space whatever the grant.
            let reserved = d.grants.withLock { $0.maptrack.reserve(newFrame: newMaptrackFrame) }
            guard case .success(let h) = reserved else { return reserved.map { _ in (0, 0) } }
            let claimed = acquire(g, ref, by: d.id, readOnly: readOnly)
            guard case .success(let frame) = claimed else {
                d.grants.withLock { $0.maptrack.release(reserved: h) }
                return claimed.map { _ in (0, 0) }
            }
            let mapped: Result<UInt32, GrantStatusError> = d.grants.withLock { table in
                guard table.maptrack.fill(h, with: Maptrack.Entry(granter: g.id, ref: ref, frame: frame, address: address,
                                                                   readOnly: readOnly)) else {
                    table.maptrack.release(reserved: h)
                    return .failure(GrantStatusError(.generalError))
                }
                guard d.mapPage(address, to: frame, permissions: readOnly ? [.read] : [.read, .write], borrowed: true) else {
                    _ = table.maptrack.remove(handle: h)
                    return .failure(GrantStatusError(.badVirtualAddress))
                }
                return .success(h)
            }
            guard case .success(let handle) = mapped else {
                relinquish(g, ref, frame: frame, readOnly: readOnly)
                return mapped.map { _ in (0, 0) }
            }
            // The control domain drives devices with host addresses (it is direct-mapped for that).
            return .success((handle, device && d.privileged ? frame.raw : 0))
        } ?? .failure(GrantStatusError(.badDomain))
    }

    func unmap(handle: UInt32, at address: UInt64) -> GrantStatus {
        let d = self
        let removed: Result<Maptrack.Entry, GrantStatusError> = grants.withLock { table in
            guard let e = table.maptrack.entry(handle) else { return .failure(GrantStatusError(.badHandle)) }
            guard address == 0 || address == e.address.raw else { return .failure(GrantStatusError(.generalError)) }
            _ = table.maptrack.remove(handle: handle)
            _ = d.physMap.withLock { m in m.stage2.unmapPage(e.address, memory: &m.tables) }
            return .success(e)
        }
        switch removed {
        case .success(let e):
            // The caller is running here, so its VMID is the current one: this CPU's and every other's TLBs.
            tern_tlbi_ipa_is(e.address.raw)
            dropMapping(e)
            return .okay
        case .failure(let refused):
            return refused.status
        }
    }

    func copy(from source: GrantCopyPointer, to destination: GrantCopyPointer, length: UInt64) -> GrantStatus {
        withSide(self, source, writing: false) { from in
            withSide(self, destination, writing: true) { to in
                tern_copy(to.raw + destination.offset, from.raw + source.offset, length)
                return .okay
            }
        }
    }

    func flush(frame: HostPhysicalAddress, offset: UInt64, length: UInt64, invalidate: Bool) -> UInt64 {
        let own = ownsRAM(frame)
        // Under the lock, so a mapped frame cannot be unmapped (and reused by its owner) meanwhile. An
        // invalidate also cleans: lines that straddle the range, or belong to a frame the caller only
        // reads, must not lose data that is not the caller's to throw away.
        return grants.withLock { table in
            guard own || table.maptrack.holds(frame: frame) else { return XenError.EPERM.returnValue }
            tern_dcache_range(frame.raw + offset, length, 1, invalidate ? 1 : 0)
            return 0
        }
    }
}

/// The granter's side of a mapping going away: its use count, and its entry's flags.
private func dropMapping(_ e: Maptrack.Entry) {
    // Dead or alive: this very mapping keeps it from being released (it is kept for its mapped
    // grants), so the hold cannot fail, and it lasts until its grants lock has been let go.
    guard let g = holdDomain(e.granter, live: false) else {
        log("grant unmap: the granter is gone while mapped; its entry stays marked")
        return
    }
    relinquish(g, e.ref, frame: e.frame, readOnly: e.readOnly)
    g.withReferences { DomainReferences.drop($0) }
}

/// A page for a maptrack frame, from the frame allocator (the table's own initialisation fills it).
private func newMaptrackFrame() -> UnsafeMutableRawPointer? {
    allocateFrames(pages: 1).flatMap { UnsafeMutableRawPointer(bitPattern: UInt($0.raw)) }
}

/// Gives back the mappings of others' grants a dead domain held (its stage 2 goes with it), and its
/// maptrack's frames, a frame (256 mappings) a call: true once none is left. Called holding every
/// run-queue lock, each pass until then, as a full table (1024 frames) at once would keep every CPU
/// waiting.
func dropGrantMappings(_ d: Domain, frames: Int = 1) -> Bool {
    // Taken out of the table first: a granter's lock is not to be taken under d's (d may be its own).
    let (entries, emptied, done) = d.grants.withLock { $0.maptrack.takeOut(frames: frames) }
    // A granter that died too still has its grant frames: it is kept while these mappings count.
    var granter: Domain?
    for e in entries {
        if granter?.id != e.granter {
            granter = nil
            for case let g? in domains where g.id == e.granter { granter = g }
        }
        if let g = granter { relinquish(g, e.ref, frame: e.frame, readOnly: e.readOnly) }
    }
    for page in emptied { freeFrames(HostPhysicalAddress(UInt64(UInt(bitPattern: page))), pages: 1) }
    return done
}
/// The host frame behind one side of a copy (a grant held for the copy, or the caller's own frame),
/// given to `body`.
private func withSide(_ d: Domain, _ side: GrantCopyPointer, writing: Bool,
                      _ body: (HostPhysicalAddress) -> GrantStatus) -> GrantStatus {
    if !side.grant {
        guard let frame = GuestFrameNumber(guest: side.frameOrRef),
              let host = d.hostAddress(ofRAM: frame.address, length: pageSize) ?? d.ownPage(frame) else {
            return .badPage
        }
        return body(host)
    }
    let granter = DomainID(side.domain == domidSelf ? d.id.raw : side.domain)
    return withHeldDomain(granter, xenPV: true) { g in
        switch acquire(g, side.ref, by: d.id, readOnly: !writing) {
        case .success(let f):
            let status = body(f)
            relinquish(g, side.ref, frame: f, readOnly: !writing)
            return status
        case .failure(let e):
            return e.status
        }
    } ?? .badDomain
}
