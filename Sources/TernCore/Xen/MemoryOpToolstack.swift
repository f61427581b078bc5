// memory_op's reservation and foreign-mapping commands (public/memory.h): a balloon giving pages back
// and taking them again, the domain builder filling a new domain's memory, and dom0 mapping another
// domain's pages and grant table (Linux's privcmd does both for libxl, xenstored and xenconsoled).
// Xen's rules and errors are here; the MemoryOpHost keeps the stage 2s and who holds what.

/// struct xen_memory_reservation (32 bytes).
public struct XenMemoryReservation {
    /// XEN_GUEST_HANDLE(xen_pfn_t): the extents' first frames.
    public var extentStart: UInt64 = 0
    public var extents: UInt64 = 0
    public var order: UInt32 = 0
    public var flags: UInt32 = 0
    public var domid: UInt16 = 0
    var pad16: UInt16 = 0
    var pad32: UInt32 = 0
    public init() {}
}

/// struct xen_add_to_physmap_batch (32 bytes): `size` entries of idxs (the foreign domain's frames),
/// gpfns (where they go) and errs (each one's result).
public struct XenAddToPhysmapBatch {
    public var domid: UInt16 = 0
    public var space: UInt16 = 0
    public var size: UInt16 = 0
    public var foreignDomid: UInt16 = 0
    public var indexes: UInt64 = 0
    public var gpfns: UInt64 = 0
    public var errors: UInt64 = 0
    public init() {}
}

/// struct xen_remove_from_physmap (16 bytes).
public struct XenRemoveFromPhysmap {
    public var domid: UInt16 = 0
    var pad16: UInt16 = 0
    var pad32: UInt32 = 0
    public var gpfn: UInt64 = 0
    public init() {}
}

/// struct xen_mem_acquire_resource (32 bytes).
public struct XenMemAcquireResource {
    public var domid: UInt16 = 0
    public var type: UInt16 = 0
    public var id: UInt32 = 0
    public var frames: UInt32 = 0
    public var pad: UInt32 = 0
    public var frame: UInt64 = 0
    /// XEN_GUEST_HANDLE(xen_pfn_t): where the caller wants the frames (it is translated).
    public var frameList: UInt64 = 0
    public init() {}

    public static let grantTable: UInt16 = 1
    public static let sharedFrames: UInt32 = 0
}

extension MemoryOp {
    /// The largest extent a reservation may name, as Xen 4.17 on Arm: 1 GiB for the control domain,
    /// 2 MiB for the others (CONFIG_DOMU_MAX_ORDER).
    public static func maximumOrder(privileged: Bool) -> UInt32 { privileged ? 18 : 9 }
    /// Pages one call gives or takes before it lets the guest in again (a continuation): 4 MiB.
    public static let pagesPerCall: UInt64 = 1024

    /// populate_physmap and decrease_reservation: extent after extent from the one the command says it
    /// continues at; the answer is how many are done, counting those before (Xen stops at the first
    /// that fails, and a caller sees it from the count).
    static func reservation<Memory: GuestMemoryAccess, Host: MemoryOpHost>(
        _ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        let start = command >> 6
        var r = XenMemoryReservation()
        guard memory.read(&r, from: arg) else { return XenError.EFAULT.returnValue }
        // Xen's bound: the continuation's extent must fit above the command's six bits.
        guard start < r.extents, r.extents <= UInt64.max >> 6 else { return start }
        let target = self.target(r.domid, host)
        guard case .success(let id) = target else { return target.errorValue }
        guard r.order <= maximumOrder(privileged: host.privileged) else { return start }
        let populating = command & 0x3F == MemoryOpCommand.populate_physmap.rawValue
        var done = start
        var pages: UInt64 = 0
        while done < r.extents {
            // Xen's hypercall_preempt_check: the rest is the same call again, from this extent.
            if pages >= pagesPerCall { return host.continuation(command & 0x3F | done << 6) }
            pages += UInt64(1) << UInt64(r.order)
            var raw: UInt64 = 0
            guard memory.read(&raw, from: VirtualAddress(r.extentStart &+ done &* 8)),
                  let gfn = GuestFrameNumber(guest: raw) else { break }
            if populating {
                guard gfn.raw & ((1 << UInt64(r.order)) - 1) == 0, host.populate(id, at: gfn, order: Int(r.order)) == nil else { break }
            } else {
                var removed = true
                for page in 0 ..< UInt64(1) << UInt64(r.order) where removed {
                    removed = host.remove(id, at: GuestFrameNumber(gfn.raw &+ page)) == nil
                }
                guard removed else { break }
            }
            done += 1
        }
        return done
    }

    /// add_to_physmap_batch (Linux's add_to_physmap_range): each entry's result in errs, the call's 0
    /// unless the structures cannot be read or written. Only foreign mappings into the caller's own
    /// space: dom0 mapping a domU's pages.
    static func addToPhysmapBatch<Memory: GuestMemoryAccess, Host: MemoryOpHost>(
        _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        var b = XenAddToPhysmapBatch()
        guard memory.read(&b, from: arg) else { return XenError.EFAULT.returnValue }
        guard namesCaller(b.domid, host.caller) else { return (host.privileged ? XenError.EINVAL : XenError.EPERM).returnValue }
        guard b.space == UInt16(XenMapSpace.gmfn_foreign.rawValue) else { return XenError.EOPNOTSUPP.returnValue }
        let owner = DomainID(b.foreignDomid)
        for i in 0 ..< UInt64(b.size) {
            var index: UInt64 = 0, gpfn: UInt64 = 0
            guard memory.read(&index, from: VirtualAddress(b.indexes &+ i &* 8)),
                  memory.read(&gpfn, from: VirtualAddress(b.gpfns &+ i &* 8)) else { return XenError.EFAULT.returnValue }
            let result: XenError?
            if owner == host.caller || b.foreignDomid == domidSelf {
                result = .EINVAL
            } else if !host.privileged {
                result = .EPERM
            } else if let frame = GuestFrameNumber(guest: index), let at = GuestFrameNumber(guest: gpfn) {
                result = host.mapForeign(owner, frame: frame, at: at)
            } else {
                result = .EINVAL
            }
            let code = Int32(truncatingIfNeeded: -(result?.rawValue ?? 0))
            guard memory.write(code, to: VirtualAddress(b.errors &+ i &* 4)) else { return XenError.EFAULT.returnValue }
        }
        return 0
    }

    /// acquire_resource of another domain's shared grant-table frames, mapped at the caller's frames
    /// (Xen's order: the structure, the domain, which may not be the caller, the resource, the range).
    /// No frame list asks how many frames the resource has.
    static func acquireResource<Memory: GuestMemoryAccess, Host: MemoryOpHost>(
        _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        var r = XenMemAcquireResource()
        guard memory.read(&r, from: arg) else { return XenError.EFAULT.returnValue }
        guard r.pad == 0 else { return XenError.EINVAL.returnValue }
        guard !namesCaller(r.domid, host.caller), host.privileged else { return XenError.EPERM.returnValue }
        let owner = DomainID(r.domid)
        guard let limit = host.grantFrameLimit(of: owner) else { return XenError.ESRCH.returnValue }
        guard r.type == XenMemAcquireResource.grantTable else { return XenError.EOPNOTSUPP.returnValue }
        guard r.id == XenMemAcquireResource.sharedFrames else { return XenError.EINVAL.returnValue }
        if r.frameList == 0 {
            guard r.frames == 0 else { return XenError.EINVAL.returnValue }
            r.frames = UInt32(limit)
            return memory.write(r, to: arg) ? 0 : XenError.EFAULT.returnValue
        }
        guard r.frame < UInt64(limit), UInt64(r.frames) <= UInt64(limit) - r.frame else { return XenError.EINVAL.returnValue }
        for i in 0 ..< UInt64(r.frames) {
            var raw: UInt64 = 0
            guard memory.read(&raw, from: VirtualAddress(r.frameList &+ i &* 8)) else { return XenError.EFAULT.returnValue }
            guard let gfn = GuestFrameNumber(guest: raw) else { return XenError.EINVAL.returnValue }
            if let e = host.mapGrantFrame(of: owner, Int(r.frame + i), at: gfn) { return e.returnValue }
        }
        return 0
    }
}
