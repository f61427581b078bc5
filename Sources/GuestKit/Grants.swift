// Grant tables from the guest side (version 1): placing our table's first frame in the grant window,
// granting a page, and the three operations a peer uses on a grant: map, unmap and copy.
import GuestKitAsm
import TernCore

public enum Grants {
    /// Where our own grant table's frame 0 goes (Xen's GUEST_GNTTAB_BASE).
    public static var table: UInt64 { GuestLayout.grantTable.raw }

    /// xen_add_to_physmap { domid, size, space = grant_table } { idx 0 } { gpfn }: frame 0 in the window.
    public static func placeTable() -> Int64 { placeTable(frame: 0) }

    /// Frame `frame` of our grant table at its place in the window, for references from 512 x frame.
    public static func placeTable(frame: UInt64) -> Int64 {
        var map: (UInt64, UInt64, UInt64) = (UInt64(domidSelf) | UInt64(XenMapSpace.grant_table.rawValue) << 32, frame,
                                             table >> 12 + frame)
        return Xen.call(.memory_op, MemoryOpCommand.add_to_physmap.rawValue, pointingTo: &map)
    }

    public static func entry(_ ref: UInt32) -> UInt64 { table + UInt64(ref) * 8 }

    /// Grants our page at `page` to `domain`; an entry is valid once its flags say so, so the domain
    /// and frame go first.
    public static func grant(_ ref: UInt32, page: UInt64, to domain: UInt16, readOnly: Bool = false) {
        guest_store32(entry(ref) + 4, UInt32(page >> 12))
        guest_barrier()
        let flags = GrantFlags.permitAccess | (readOnly ? GrantFlags.readOnly : 0)
        guest_store32(entry(ref), UInt32(flags) | UInt32(domain) << 16)
    }

    /// gnttab_map_grant_ref for `ref` of `domain` at `address`: (status, handle).
    public static func map(_ ref: UInt32, of domain: UInt16, at address: UInt64, readOnly: Bool = false) -> (Int16, UInt32) {
        var op: (UInt64, UInt32, UInt32, UInt16, Int16, UInt32, UInt64) =
            (address, GrantMapFlags.hostMap | (readOnly ? GrantMapFlags.readOnly : 0), ref, domain, 0, 0, 0)
        let r = Xen.call(.grant_table_op, GrantTableOpCommand.map_grant_ref.rawValue, pointingTo: &op, count: 1)
        return r == 0 ? (op.4, op.5) : (Int16(truncatingIfNeeded: r), 0)
    }

    /// gnttab_unmap_grant_ref of `handle` at `address`: the status.
    public static func unmap(_ handle: UInt32, at address: UInt64) -> Int16 {
        var op: (UInt64, UInt64, UInt32, Int16) = (address, 0, handle, 0)
        let r = Xen.call(.grant_table_op, GrantTableOpCommand.unmap_grant_ref.rawValue, pointingTo: &op, count: 1)
        return r == 0 ? op.3 : Int16(truncatingIfNeeded: r)
    }

    /// One side of a copy: a grant (ref, its domain) or a frame of our own (frame, DOMID_SELF).
    public struct Side {
        public var frameOrRef: UInt64
        public var domain: UInt16
        public var offset: UInt16
        public var isGrant: Bool

        public static func grant(_ ref: UInt32, of domain: UInt16, offset: UInt16 = 0) -> Side {
            Side(frameOrRef: UInt64(ref), domain: domain, offset: offset, isGrant: true)
        }

        public static func frame(_ frame: UInt64, of domain: UInt16 = domidSelf, offset: UInt16 = 0) -> Side {
            Side(frameOrRef: frame, domain: domain, offset: offset, isGrant: false)
        }
    }

    /// gnttab_copy of `length` bytes: the status.
    public static func copy(from source: Side, to destination: Side, length: UInt16) -> Int16 {
        let flags = (source.isGrant ? GrantCopyFlags.sourceGrant : 0) | (destination.isGrant ? GrantCopyFlags.destinationGrant : 0)
        var op: (UInt64, UInt16, UInt16, UInt32, UInt64, UInt16, UInt16, UInt32, UInt16, UInt16, Int16, UInt16) =
            (source.frameOrRef, source.domain, source.offset, 0, destination.frameOrRef, destination.domain,
             destination.offset, 0, length, flags, 0, 0)
        let r = Xen.call(.grant_table_op, GrantTableOpCommand.copy.rawValue, pointingTo: &op, count: 1)
        return r == 0 ? op.10 : Int16(truncatingIfNeeded: r)
    }
}
