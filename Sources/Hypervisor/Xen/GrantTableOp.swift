// grant_table_op: the grant table's shape. Linux on Arm sizes its table with GNTTABOP_query_size and
// picks the v1 layout with GNTTABOP_set_version, then maps the frames itself (MemoryOp.swift). Using
// another domain's grants (map, unmap, copy) is GrantMapping.swift.
import TernCore

func grantTableOp(_ command: UInt64, _ arg: VirtualAddress, _ count: UInt64, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    switch GrantTableOpCommand(rawValue: command) {
    case .query_size:
        // struct gnttab_query_size { domid_t dom; uint32_t nr_frames, max_nr_frames; int16_t status; }
        guard count == 1 else { return XenError.EINVAL.returnValue }
        guard let dom = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        guard isSelf(UInt16(truncatingIfNeeded: dom), d) else {
            return GuestMemory.store32(arg + 12, UInt32(bitPattern: -2) & 0xFFFF) ? 0 : XenError.EFAULT.returnValue  // GNTST_bad_domain
        }
        let placed = d.grants.withLock { $0.frames.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
        guard GuestMemory.store32(arg + 4, UInt32(max(placed, 1))),
              GuestMemory.store32(arg + 8, UInt32(maximumGrantFrames)),
              GuestMemory.store32(arg + 12, 0) else { return XenError.EFAULT.returnValue }
        return 0
    case .set_version:
        // struct gnttab_set_version { uint32_t version; }: Tern has the v1 layout only.
        guard count == 1 else { return XenError.EINVAL.returnValue }
        guard let version = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        return version == 1 ? 0 : XenError.EINVAL.returnValue
    case .get_version:
        // struct gnttab_get_version { domid_t dom; uint32_t version; }
        guard count == 1 else { return XenError.EINVAL.returnValue }
        guard let dom = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        guard isSelf(UInt16(truncatingIfNeeded: dom), d) else { return XenError.EPERM.returnValue }
        return GuestMemory.store32(arg + 4, 1) ? 0 : XenError.EFAULT.returnValue
    case .map_grant_ref:
        return forEach(count, of: GrantOpLayout.mapSize, from: arg, v) { mapGrant(d, $0) ? 0 : XenError.EFAULT.returnValue }
    case .unmap_grant_ref:
        return forEach(count, of: GrantOpLayout.unmapSize, from: arg, v) { unmapGrant(d, $0) ? 0 : XenError.EFAULT.returnValue }
    case .copy:
        return forEach(count, of: GrantOpLayout.copySize, from: arg, v) { copyGrant(d, $0) ? 0 : XenError.EFAULT.returnValue }
    case .cache_flush:
        // Each operation's result is the call's: the first failure ends the batch, as on Xen.
        return forEach(count, of: GrantOpLayout.cacheFlushSize, from: arg, v) { cacheFlush(d, $0) }
    default:
        return XenError.ENOSYS.returnValue
    }
}

/// Runs `op` on each of `count` structures of `size` bytes at `arg` until one fails (each writes its
/// own status), a bounded number per call: the rest of a long batch is the call's continuation, so no
/// guest holds its CPU at EL2 for long, however long its batch (Xen's continuation, not its limit).
private func forEach(_ count: UInt64, of size: Int, from arg: VirtualAddress, _ v: VCPU,
                     _ op: (VirtualAddress) -> UInt64) -> UInt64 {
    // Xen takes the count as an unsigned int and refuses one that is negative as an int.
    let count = UInt64(UInt32(truncatingIfNeeded: count))
    guard count <= UInt64(Int32.max) else { return XenError.EINVAL.returnValue }
    let now = min(count, grantOperationsPerCall)
    for i in 0 ..< now {
        let r = op(arg + i * UInt64(size))
        if r != 0 { return r }
    }
    guard count > now else { return 0 }
    return continueHypercall(v, (arg + now * UInt64(size)).raw, count - now)
}
