// memory_op: what a guest may place in its own physical address space, decided here and host-tested.
// Linux on Arm asks for its shared_info page (a failure is a BUG() there) and for its grant-table
// frames, both with XENMEM_add_to_physmap, and reads its reservation; the MemoryOpHost places the page
// or frame. Nothing here reaches outside the calling domain.

/// What memory_op needs from the hypervisor, for one calling domain.
public protocol MemoryOpHost {
    var caller: DomainID { get }
    /// The caller's RAM in pages: its current and maximum reservation (Tern domains keep their size).
    var reservationPages: UInt64 { get }
    /// shared_info goes to the caller's own RAM page at `page`; EINVAL when that is not its RAM.
    func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64
    /// Grant frame `index` (below GrantTableOp.maximumFrames) at `page` (inside the grant window);
    /// a frame once placed stays where it is.
    func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64
}

public enum MemoryOp {
    public static func handle<Memory: GuestMemoryAccess, Host: MemoryOpHost>(
        _ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        switch MemoryOpCommand(rawValue: command) {
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
            guard namesCaller(dom, host.caller) else { return XenError.EPERM.returnValue }
            return host.reservationPages
        case .get_sharing_freed_pages, .get_sharing_shared_pages:
            // Memory sharing is x86's; Xen on Arm counts nothing shared (`xl info`'s sharing lines).
            return 0
        default:
            return XenError.ENOSYS.returnValue
        }
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
