import Testing
@testable import TernCore

/// memory_op against a fake host and guest memory: where shared_info and grant frames may go, who may
/// ask, and bad pointers.
@Suite struct MemoryOpTests {
    final class Host: MemoryOpHost {
        let caller = DomainID(2)
        let privileged = false
        func reservation(of id: DomainID) -> (current: UInt64, maximum: UInt64)? { id == caller ? (8192, 8192) : nil }
        func populate(_ target: DomainID, at gfn: GuestFrameNumber, order: Int) -> XenError? { .ENOMEM }
        func remove(_ target: DomainID, at gfn: GuestFrameNumber) -> XenError? { .ENOENT }
        func mapForeign(_ owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError? { .EPERM }
        func grantFrameLimit(of owner: DomainID) -> Int? { nil }
        func mapGrantFrame(of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError? { .EPERM }
        func continuation(_ command: UInt64) -> UInt64 { command }
        var sharedInfo: [GuestPhysicalAddress] = []
        var grantFrames: [(Int, GuestPhysicalAddress)] = []
        func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64 {
            sharedInfo.append(page)
            return 0
        }
        func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64 {
            grantFrames.append((index, page))
            return 0
        }
    }

    let host = Host()
    var memory = FakeGuestMemory()
    static let arg: UInt64 = 0x2000

    init() { memory.map(Self.arg) }

    mutating func add(_ space: XenMapSpace?, index: UInt64 = 0, gpfn: UInt64, domid: UInt16 = domidSelf, rawSpace: UInt32? = nil) -> Int64 {
        var request = XenAddToPhysmap()
        (request.domid, request.space, request.index, request.gpfn) = (domid, rawSpace ?? space!.rawValue, index, gpfn)
        _ = memory.write(request, to: VirtualAddress(Self.arg))
        return Int64(bitPattern: MemoryOp.handle(MemoryOpCommand.add_to_physmap.rawValue, VirtualAddress(Self.arg), &memory, host))
    }

    @Test func theStructureHasTheHeadersLayout() {
        #expect(MemoryLayout<XenAddToPhysmap>.size == 24)
        #expect(MemoryLayout<XenAddToPhysmap>.offset(of: \.size) == 2)
        #expect(MemoryLayout<XenAddToPhysmap>.offset(of: \.space) == 4)
        #expect(MemoryLayout<XenAddToPhysmap>.offset(of: \.index) == 8)
        #expect(MemoryLayout<XenAddToPhysmap>.offset(of: \.gpfn) == 16)
    }

    @Test mutating func sharedInfoAndGrantFramesGoWhereTheyMay() {
        #expect(add(.shared_info, gpfn: 0x40123) == 0)
        #expect(host.sharedInfo == [GuestPhysicalAddress(0x4012_3000)])
        #expect(add(.shared_info, index: 1, gpfn: 0x40123) == -22)        // there is one shared_info
        #expect(add(.grant_table, index: 3, gpfn: 0x38004, domid: 2) == 0)
        #expect(add(.grant_table, index: 31, gpfn: 0x38FFF) == 0)          // the window's last page
        #expect(host.grantFrames.map(\.0) == [3, 31] && host.grantFrames[0].1 == GuestPhysicalAddress(0x3800_4000))
        #expect(add(.grant_table, index: 32, gpfn: 0x38005) == -22)        // past max_nr_frames
        #expect(add(.grant_table, index: 0, gpfn: 0x39000) == -22)         // outside the grant window
        #expect(add(.grant_table, index: 0, gpfn: 0x37FFF) == -22)
        #expect(add(.shared_info, gpfn: 1 << 36) == -22)                   // no such guest frame
        #expect(host.grantFrames.count == 2 && host.sharedInfo.count == 1)
    }

    @Test mutating func otherDomainsSpacesAndBadPointersAreRefused() {
        #expect(add(.shared_info, gpfn: 0x40123, domid: 0) == -1)          // EPERM
        #expect(add(.gmfn, gpfn: 0x40123) == -38)                          // ENOSYS
        #expect(add(nil, gpfn: 0x40123, rawSpace: 99) == -38)
        #expect(MemoryOp.handle(MemoryOpCommand.add_to_physmap.rawValue, VirtualAddress(Self.arg + 0xFF0), &memory, host)
                == XenError.EFAULT.returnValue)                            // runs off the page
        #expect(MemoryOp.handle(MemoryOpCommand.increase_reservation.rawValue, VirtualAddress(Self.arg), &memory, host)
                == XenError.ENOSYS.returnValue)
        #expect(host.sharedInfo.isEmpty && host.grantFrames.isEmpty)
    }

    @Test mutating func reservationsAreTheCallersOnly() {
        // DOMID_SELF, and its own id at an address only 2-aligned (a domid_t may be anywhere aligned).
        for (offset, dom) in [(0, domidSelf), (2, UInt16(2))] as [(UInt64, UInt16)] {
            _ = memory.write(dom, to: VirtualAddress(Self.arg + offset))
            #expect(MemoryOp.handle(MemoryOpCommand.current_reservation.rawValue, VirtualAddress(Self.arg + offset), &memory, host) == 8192)
            #expect(MemoryOp.handle(MemoryOpCommand.maximum_reservation.rawValue, VirtualAddress(Self.arg + offset), &memory, host) == 8192)
        }
        _ = memory.write(UInt16(0), to: VirtualAddress(Self.arg))
        #expect(MemoryOp.handle(MemoryOpCommand.current_reservation.rawValue, VirtualAddress(Self.arg), &memory, host)
                == XenError.EPERM.returnValue)
        #expect(MemoryOp.handle(MemoryOpCommand.current_reservation.rawValue, VirtualAddress(Self.arg + 0xFFF), &memory, host)
                == XenError.EFAULT.returnValue)                            // a domid_t straddling the page's end
    }

    /// xl info's sharing lines: nothing is shared on Arm, whatever the argument (Xen ignores it).
    @Test mutating func sharingCountersAreZero() {
        for command in [MemoryOpCommand.get_sharing_freed_pages, .get_sharing_shared_pages] {
            #expect(MemoryOp.handle(command.rawValue, VirtualAddress(0), &memory, host) == 0)
        }
    }
}
