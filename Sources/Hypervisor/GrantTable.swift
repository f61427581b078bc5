// grant_table_op: the grant table's shape. Linux on Arm sizes its table with GNTTABOP_query_size and
// picks the v1 layout with GNTTABOP_set_version, then maps the frames itself (PhysMap.swift). Using
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
        let placed = d.withXen { d.grantFrames.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }
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
        return forEach(count, of: GrantOpLayout.mapSize, from: arg) { mapGrant(d, $0) }
    case .unmap_grant_ref:
        return forEach(count, of: GrantOpLayout.unmapSize, from: arg) { unmapGrant(d, $0) }
    case .copy:
        return forEach(count, of: GrantOpLayout.copySize, from: arg) { copyGrant(d, $0) }
    case .cache_flush:
        // Each operation's result is the call's: the first failure ends the batch, as on Xen.
        guard count <= UInt64(maximumGrantBatch) else { return XenError.EINVAL.returnValue }
        for i in 0 ..< count {
            let r = cacheFlush(d, arg + i * UInt64(GrantOpLayout.cacheFlushSize))
            if r != 0 { return r }
        }
        return 0
    default:
        return XenError.ENOSYS.returnValue
    }
}

/// Runs `op` on each of `count` structures of `size` bytes at `arg`; each writes its own status.
private func forEach(_ count: UInt64, of size: Int, from arg: VirtualAddress, _ op: (VirtualAddress) -> Bool) -> UInt64 {
    // Xen splits long batches with continuations; Tern bounds them instead (Linux sends a few at a time).
    guard count <= UInt64(maximumGrantBatch) else { return XenError.EINVAL.returnValue }
    for i in 0 ..< count where !op(arg + i * UInt64(size)) { return XenError.EFAULT.returnValue }
    return 0
}
