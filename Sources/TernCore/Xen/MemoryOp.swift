// memory_op: what a guest may place in its own physical address space, and what the control domain may
// do to another's, decided here and host-tested. Linux on Arm asks for its shared_info page (a failure
// is a BUG() there) and for its grant-table frames, both with XENMEM_add_to_physmap, reads its
// reservation, and balloons pages out and back in (decrease_reservation, populate_physmap) to have
// somewhere to map other domains' pages. The toolstack fills a new domain's memory (populate_physmap),
// maps its pages (add_to_physmap_batch with gmfn_foreign) and its grant table (acquire_resource) into
// dom0. MemoryOpToolstack.swift has those; the MemoryOpHost does what is decided.

/// What memory_op needs from the hypervisor, for one calling domain.
public protocol MemoryOpHost {
    var caller: DomainID { get }
    /// The control domain's: it may act on other domains' memory (Xen's dummy XSM policy).
    var privileged: Bool { get }
    /// Domain `id`'s pages: what it has and the most it may have; nil when there is no such domain.
    func reservation(of id: DomainID) -> (current: UInt64, maximum: UInt64)?
    /// populate_physmap: fresh memory for the 2^order pages at `gfn` (aligned) of domain `target`.
    func populate(_ target: DomainID, at gfn: GuestFrameNumber, order: Int) -> XenError?
    /// decrease_reservation and remove_from_physmap: whatever `target` has at `gfn` goes (its own page
    /// becomes a hole, another domain's page mapped there is let go).
    func remove(_ target: DomainID, at gfn: GuestFrameNumber) -> XenError?
    /// XENMAPSPACE_gmfn_foreign: `owner`'s page at its `frame` appears at the caller's `gfn`, and is
    /// held until it is removed.
    func mapForeign(_ owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError?
    /// How many grant-table frames `owner` may have; nil when there is no such domain.
    func grantFrameLimit(of owner: DomainID) -> Int?
    /// acquire_resource: grant-table frame `index` of `owner` (made if it has not been yet) at the
    /// caller's `gfn`, held as a foreign mapping.
    func mapGrantFrame(of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError?
    /// Makes the call a continuation: it is made again with `command` (the command and where to go on
    /// from), which is returned for the caller to leave in x0.
    func continuation(_ command: UInt64) -> UInt64
    /// shared_info goes to the caller's own RAM page at `page`; EINVAL when that is not its RAM.
    func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64
    /// Grant frame `index` (below GrantTableOp.maximumFrames) at `page` (inside the grant window);
    /// a frame once placed stays where it is.
    func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64
}

public enum MemoryOp {
    public static func handle<Memory: GuestMemoryAccess, Host: MemoryOpHost>(
        _ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        // The low six bits are the command; above them, where a preempted call continues (MEMOP_EXTENT_SHIFT).
        switch MemoryOpCommand(rawValue: command & 0x3F) {
        case .populate_physmap, .decrease_reservation:
            return reservation(command, arg, &memory, host)
        case .add_to_physmap_batch:
            return addToPhysmapBatch(arg, &memory, host)
        case .remove_from_physmap:
            var request = XenRemoveFromPhysmap()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard let gfn = GuestFrameNumber(guest: request.gpfn) else { return XenError.EINVAL.returnValue }
            let target = self.target(request.domid, host)
            guard case .success(let id) = target else { return target.errorValue }
            return host.remove(id, at: gfn)?.returnValue ?? 0
        case .acquire_resource:
            return acquireResource(arg, &memory, host)
        case .add_to_physmap:
            var request = XenAddToPhysmap()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard namesCaller(request.domid, host.caller) else { return XenError.EPERM.returnValue }
            guard let page = GuestFrameNumber(guest: request.gpfn)?.address else { return XenError.EINVAL.returnValue }
            switch XenMapSpace(rawValue: request.space) {
            case .shared_info:
                guard request.index == 0 else { return XenError.EINVAL.returnValue }
                return host.placeSharedInfo(at: page)
            case .grant_table:
                let window = GuestLayout.grantTable.raw
                guard request.index < UInt64(GrantTableOp.maximumFrames),
                      page.raw >= window, page.raw < window + GuestLayout.grantTableSize else {
                    return XenError.EINVAL.returnValue
                }
                return host.placeGrantFrame(Int(request.index), at: page)
            default:
                return XenError.ENOSYS.returnValue
            }
        case .maximum_reservation, .current_reservation:
            // The argument is a domid_t; the answer is in pages.
            var dom: UInt16 = 0
            guard memory.read(&dom, from: arg) else { return XenError.EFAULT.returnValue }
            let target = self.target(dom, host)
            guard case .success(let id) = target else { return target.errorValue }
            guard let pages = host.reservation(of: id) else { return XenError.ESRCH.returnValue }
            return command & 0x3F == MemoryOpCommand.maximum_reservation.rawValue ? pages.maximum : pages.current
        case .get_sharing_freed_pages, .get_sharing_shared_pages:
            // Memory sharing is x86's; Xen on Arm counts nothing shared (`xl info`'s sharing lines).
            return 0
        default:
            return XenError.ENOSYS.returnValue
        }
    }

    /// The domain a request names: the caller's own, or for the control domain any other.
    static func target<Host: MemoryOpHost>(_ dom: UInt16, _ host: Host) -> Result<DomainID, XenError> {
        if namesCaller(dom, host.caller) { return .success(host.caller) }
        return host.privileged ? .success(DomainID(dom)) : .failure(.EPERM)
    }
}

/// struct xen_add_to_physmap (public/memory.h) on arm64, where xen_ulong_t and xen_pfn_t are 64 bits.
public struct XenAddToPhysmap: Equatable {
    public var domid: UInt16 = 0
    /// Only for XENMAPSPACE_gmfn_range.
    public var size: UInt16 = 0
    public var space: UInt32 = 0
    public var index: UInt64 = 0
    public var gpfn: UInt64 = 0
    public init() {}
}
