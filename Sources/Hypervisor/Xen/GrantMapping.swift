// Using another domain's grants: GNTTABOP_map_grant_ref puts a granted frame into the caller's stage 2
// at the address it names, unmap_grant_ref takes it out again, and copy moves bytes between granted
// frames and the caller's own. The granting domain's entry (in its grant frames, which it writes too)
// says who may do what; GTF_reading/GTF_writing tell it the frame is in use. A domain whose frames
// others still map keeps its memory after it dies, until the last mapping goes (as on Xen), so no
// stage 2 ever points at memory that has been given to someone else.
import TernArchAsm
import TernCore

/// Host address of grant entry `ref` in a table; nil when its frame was never placed.
private func entryAddress(_ table: DomainGrants, _ ref: UInt32) -> HostPhysicalAddress? {
    let frame = Int(ref) / GrantAccess.entriesPerFrame
    guard frame < table.frames.count, let placed = table.frames[frame] else { return nil }
    return placed.host + UInt64(Int(ref) % GrantAccess.entriesPerFrame * GrantAccess.entrySize)
}

/// Claims entry `ref` of `g` for `user` (compare-and-swap against the guest's own updates) and returns
/// the host address of the granted frame, which must be g's RAM; sets GTF_reading (and GTF_writing).
/// `table` is g's, under its grants lock.
private func claim(_ g: Domain, _ table: DomainGrants, _ ref: UInt32, by user: DomainID,
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
    guard let frame = g.hostAddress(ofRAM: gfn.address, length: pageSize) else {
        return .failure(GrantStatusError(.badPage))
    }
    return .success(HostPhysicalAddress(frame))
}

/// Takes a use of grant `ref` of `g` for `user`: counted in g's ActiveGrants and marked in the entry
/// (GTF_reading, and GTF_writing unless read-only) for as long as it lasts, as Xen does for maps and
/// copies alike, so the granter cannot end the grant under it. Returns the granted frame.
private func acquire(_ g: Domain, _ ref: UInt32, by user: DomainID, readOnly: Bool) -> Result<HostPhysicalAddress, GrantStatusError> {
    g.grants.withLock { table in
        table.active.add(ref, readOnly: readOnly)
        let r = claim(g, table, ref, by: user, readOnly: readOnly)
        if case .failure = r { release(table, ref, flags: table.active.remove(ref, readOnly: readOnly)) }
        return r
    }
}

/// Gives back a use taken with `acquire`.
private func relinquish(_ g: Domain, _ ref: UInt32, readOnly: Bool) {
    g.grants.withLock { table in release(table, ref, flags: table.active.remove(ref, readOnly: readOnly)) }
}

/// Clears `flags` in entry `ref` (those no mapping needs any more) of a table under its grants lock.
private func release(_ table: DomainGrants, _ ref: UInt32, flags: UInt16) {
    guard flags != 0, let entry = entryAddress(table, ref) else { return }
    _ = SharedWord.update(tern_load32(entry.raw), { $0 & UInt32(flags) != 0 ? $0 & ~UInt32(flags) : nil },
                          exchange: { tern_compare_exchange32(entry.raw, $0, $1) })
}

private func setStatus(_ at: VirtualAddress, _ status: GrantStatus) -> Bool {
    GuestMemory.write(status.rawValue, to: at)
}

/// One gnttab_map_grant_ref at `op`. False only when the structure itself is out of reach.
func mapGrant(_ d: Domain, _ op: VirtualAddress) -> Bool {
    var m = (UInt64(0), UInt32(0), UInt32(0), UInt16(0), Int16(0), UInt32(0), UInt64(0))
    guard GuestMemory.read(&m, from: op) else { return false }
    let (address, flags, ref, dom) = (GuestPhysicalAddress(m.0), m.1, m.2, m.3)
    let status: GrantStatus
    var handle: UInt32 = 0
    var busAddress: UInt64 = 0
    if flags & GrantMapFlags.hostMap == 0 || flags & GrantMapFlags.containsPTE != 0 {
        status = .generalError              // Arm maps into the guest's physical space only
    } else if address.raw & 0xFFF != 0 || address.raw >= 1 << 39 {
        status = .badVirtualAddress
    } else {
        let readOnly = flags & GrantMapFlags.readOnly != 0
        let granter = DomainID(dom == domidSelf ? d.id.raw : dom)
        let result = withPinnedDomain(granter, xenPV: true) { g -> Result<UInt32, GrantStatusError> in
            let claimed = acquire(g, ref, by: d.id, readOnly: readOnly)
            guard case .success(let frame) = claimed else { return claimed.map { _ in 0 } }
            let mapped: Result<UInt32, GrantStatusError> = d.grants.withLock { table in
                guard let h = table.maptrack.add(Maptrack.Entry(granter: g.id, ref: ref, frame: frame, address: address,
                                                                 readOnly: readOnly)) else {
                    return .failure(GrantStatusError(.noDeviceSpace))      // maptrack full
                }
                let placed = d.physMap.withLock { m in
                    do throws(PageTableError) {
                        try m.stage2.map(address, to: frame, size: pageSize, type: .normal,
                                         permissions: readOnly ? [.read] : [.read, .write], memory: &m.tables)
                    } catch {
                        return false
                    }
                    tern_stage2_sync()
                    return true
                }
                guard placed else {
                    _ = table.maptrack.remove(handle: h)
                    return .failure(GrantStatusError(.badVirtualAddress))
                }
                return .success(h)
            }
            guard case .success = mapped else {
                relinquish(g, ref, readOnly: readOnly)
                return mapped
            }
            // The control domain drives devices with host addresses (it is direct-mapped for that).
            if flags & GrantMapFlags.deviceMap != 0 && d.privileged { busAddress = frame.raw }
            return mapped
        } ?? .failure(GrantStatusError(.badDomain))
        switch result {
        case .success(let h):
            status = .okay
            handle = h
        case .failure(let e):
            status = e.status
        }
    }
    return setStatus(op + UInt64(GrantOpLayout.mapStatus), status)
        && GuestMemory.store32(op + UInt64(GrantOpLayout.mapHandle), status == .okay ? handle : UInt32(bitPattern: Int32(status.rawValue)))
        && GuestMemory.write(busAddress, to: op + UInt64(GrantOpLayout.mapBusAddress))
}

/// One gnttab_unmap_grant_ref at `op`.
func unmapGrant(_ d: Domain, _ op: VirtualAddress) -> Bool {
    var u = (UInt64(0), UInt64(0), UInt32(0), Int16(0))
    guard GuestMemory.read(&u, from: op) else { return false }
    let (address, handle) = (u.0, u.2)
    let removed: Result<Maptrack.Entry, GrantStatusError> = d.grants.withLock { table in
        guard let e = table.maptrack.entries.indices.contains(Int(handle)) ? table.maptrack.entries[Int(handle)] : nil else {
            return .failure(GrantStatusError(.badHandle))
        }
        guard address == 0 || address == e.address.raw else { return .failure(GrantStatusError(.generalError)) }
        _ = table.maptrack.remove(handle: handle)
        _ = d.physMap.withLock { m in m.stage2.unmapPage(e.address, memory: &m.tables) }
        return .success(e)
    }
    let e: Maptrack.Entry
    switch removed {
    case .success(let entry): e = entry
    case .failure(let refused): return setStatus(op + UInt64(GrantOpLayout.unmapStatus), refused.status)
    }
    // The caller is running here, so its VMID is the current one: this CPU's and every other's TLBs.
    tern_tlbi_ipa_is(e.address.raw)
    dropMapping(e)
    return setStatus(op + UInt64(GrantOpLayout.unmapStatus), .okay)
}

/// The granter's side of a mapping going away: its use count, and its entry's flags.
private func dropMapping(_ e: Maptrack.Entry) {
    lockScheduler()
    var granter: Domain?
    for case let g? in domains where g.id == e.granter { granter = g }
    // Still held by this very mapping, so it cannot be released before its grants lock is ours.
    granter?.pins += 1
    unlockScheduler()
    guard let g = granter else { return }
    relinquish(g, e.ref, readOnly: e.readOnly)
    lockScheduler()
    g.pins -= 1
    unlockScheduler()
}

/// Drops every mapping a dead domain held (its stage 2 goes with it). Called under the scheduler lock.
func dropGrantMappings(_ d: Domain) {
    let entries = d.grants.withLock { table -> [Maptrack.Entry] in
        let all = table.maptrack.entries.compactMap { $0 }
        table.maptrack = Maptrack()
        return all
    }
    // A granter that died too still has its grant frames: it is kept while these mappings count.
    for e in entries {
        for case let g? in domains where g.id == e.granter { relinquish(g, e.ref, readOnly: e.readOnly) }
    }
}

/// One gnttab_copy at `op`: each side is a grant (GNTCOPY_*_gref) of another domain or a frame of the
/// caller's own.
func copyGrant(_ d: Domain, _ op: VirtualAddress) -> Bool {
    var c = (UInt64(0), UInt16(0), UInt16(0), UInt32(0), UInt64(0), UInt16(0), UInt16(0), UInt32(0),
             UInt16(0), UInt16(0), Int16(0), UInt16(0))
    guard GuestMemory.read(&c, from: op) else { return false }
    let length = UInt64(c.8), flags = c.9
    let source = (frame: c.0, domid: c.1, offset: UInt64(c.2), grant: flags & GrantCopyFlags.sourceGrant != 0)
    let dest = (frame: c.4, domid: c.5, offset: UInt64(c.6), grant: flags & GrantCopyFlags.destinationGrant != 0)
    var status = GrantStatus.okay
    if source.offset + length > pageSize || dest.offset + length > pageSize {
        status = .badCopyArgument
    } else {
        status = withSide(d, source, writing: false) { from in
            withSide(d, dest, writing: true) { to in
                tern_copy(to.raw + dest.offset, from.raw + source.offset, length)
                return .okay
            }
        }
    }
    return setStatus(op + UInt64(GrantOpLayout.copyStatus), status)
}

/// The host frame behind one side of a copy, held while `body` runs.
private func withSide(_ d: Domain, _ side: (frame: UInt64, domid: UInt16, offset: UInt64, grant: Bool), writing: Bool,
                      _ body: (HostPhysicalAddress) -> GrantStatus) -> GrantStatus {
    if !side.grant {
        guard isSelf(side.domid, d) else { return .permissionDenied }
        guard let frame = GuestFrameNumber(guest: side.frame), let host = d.hostAddress(ofRAM: frame.address, length: pageSize) else {
            return .badPage
        }
        return body(HostPhysicalAddress(host))
    }
    let granter = DomainID(side.domid == domidSelf ? d.id.raw : side.domid)
    let ref = UInt32(truncatingIfNeeded: side.frame)
    return withPinnedDomain(granter, xenPV: true) { g in
        switch acquire(g, ref, by: d.id, readOnly: !writing) {
        case .success(let f):
            let status = body(f)
            relinquish(g, ref, readOnly: !writing)
            return status
        case .failure(let e):
            return e.status
        }
    } ?? .badDomain
}

/// GNTTABOP_cache_flush: cache maintenance for a guest that does DMA (Linux's dom0 on Arm probes it at
/// boot and uses it for foreign pages). The address is a host one, of the caller's own RAM or of a
/// frame it has mapped by grant; anything else is refused.
func cacheFlush(_ d: Domain, _ op: VirtualAddress) -> UInt64 {
    var c = (UInt64(0), UInt16(0), UInt16(0), UInt32(0))
    guard GuestMemory.read(&c, from: op) else { return XenError.EFAULT.returnValue }
    let (address, offset, length, what) = (c.0, UInt64(c.1), UInt64(c.2), c.3)
    guard offset < pageSize, offset + length <= pageSize,
          what & ~(GrantCacheOp.clean | GrantCacheOp.invalidate | GrantCacheOp.sourceGrant) == 0 else {
        return XenError.EINVAL.returnValue
    }
    if length == 0 || what == 0 { return 0 }
    guard what & GrantCacheOp.sourceGrant == 0 else { return XenError.EOPNOTSUPP.returnValue }   // as Xen: not done
    let frame = HostPhysicalAddress(address & ~(pageSize - 1))
    let own = d.memory.contains(frame)
    // Under the lock, so a mapped frame cannot be unmapped (and reused by its owner) meanwhile. An
    // invalidate also cleans: lines that straddle the range, or belong to a frame the caller only
    // reads, must not lose data that is not the caller's to throw away.
    return d.grants.withLock { table in
        guard own || table.maptrack.holds(frame: frame) else { return XenError.EPERM.returnValue }
        tern_dcache_range(frame.raw + offset, length, 1, what & GrantCacheOp.invalidate != 0 ? 1 : 0)
        return 0
    }
}
