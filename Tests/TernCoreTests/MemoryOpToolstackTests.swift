import Testing
@testable import TernCore

/// memory_op as a balloon and as the toolstack use it (layouts measured with clang on Xen 4.17's
/// memory.h): populate and decrease by extents, foreign mappings with per-entry errors, the grant
/// table as a resource, and what a domU may not do.
@Suite struct MemoryOpToolstackTests {
    static let arg: UInt64 = 0x2000
    static let list: UInt64 = 0x3000

    /// dom0 (privileged, unless said otherwise) beside domain 5; records what it was asked.
    final class Host: MemoryOpHost {
        let caller: DomainID
        let privileged: Bool
        var populated: [(DomainID, UInt64, Int)] = []
        var removed: [(DomainID, UInt64)] = []
        var foreign: [(DomainID, UInt64, UInt64)] = []
        var grantFrames: [(DomainID, Int, UInt64)] = []
        /// populate fails from this frame on (memory runs out).
        var populateLimit: UInt64 = .max
        init(caller: UInt16 = 0, privileged: Bool = true) {
            self.caller = DomainID(caller)
            self.privileged = privileged
        }
        func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64 { 0 }
        func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64 { 0 }
        func exists(_ id: DomainID) -> Bool { id.raw == 0 || id.raw == 5 }
        func reservation(of id: DomainID) -> (current: UInt64, maximum: UInt64)? { exists(id) ? (100, 200) : nil }
        func populate(_ target: DomainID, at gfn: GuestFrameNumber, order: Int) -> XenError? {
            guard exists(target) else { return .ESRCH }
            guard gfn.raw < populateLimit else { return .ENOMEM }
            populated.append((target, gfn.raw, order))
            return nil
        }
        func remove(_ target: DomainID, at gfn: GuestFrameNumber) -> XenError? {
            guard gfn.raw != 0x666 else { return .ENOENT }
            removed.append((target, gfn.raw))
            return nil
        }
        func mapForeign(_ owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError? {
            guard exists(owner) else { return .ESRCH }
            foreign.append((owner, frame.raw, gfn.raw))
            return nil
        }
        func grantFrameLimit(of owner: DomainID) -> Int? { exists(owner) ? 64 : nil }
        var continued: [UInt64] = []
        func continuation(_ command: UInt64) -> UInt64 {
            continued.append(command)
            return 0xC0_0000_0000 | command
        }
        func mapGrantFrame(of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError? {
            grantFrames.append((owner, index, gfn.raw))
            return nil
        }
    }

    var memory = FakeGuestMemory()
    init() {
        memory.map(Self.arg)
        memory.map(Self.list)
    }

    mutating func words(_ values: [UInt64], at address: UInt64 = list) {
        for (i, v) in values.enumerated() { _ = memory.write(v, to: VirtualAddress(address + UInt64(i) * 8)) }
    }

    mutating func reservation(_ command: MemoryOpCommand, extents: [UInt64], order: UInt32 = 0, domid: UInt16 = 5,
                              start: UInt64 = 0, _ host: Host) -> Int64 {
        words(extents)
        var r = XenMemoryReservation()
        (r.extentStart, r.extents, r.order, r.domid) = (Self.list, UInt64(extents.count), order, domid)
        _ = memory.write(r, to: VirtualAddress(Self.arg))
        return Int64(bitPattern: MemoryOp.handle(command.rawValue | start << 6, VirtualAddress(Self.arg), &memory, host))
    }

    @Test func structuresAreLaidOutAsXen417() {
        #expect(MemoryLayout<XenMemoryReservation>.size == 32)
        #expect(MemoryLayout<XenMemoryReservation>.offset(of: \.extents) == 8)
        #expect(MemoryLayout<XenMemoryReservation>.offset(of: \.order) == 16)
        #expect(MemoryLayout<XenMemoryReservation>.offset(of: \.flags) == 20)
        #expect(MemoryLayout<XenMemoryReservation>.offset(of: \.domid) == 24)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.size == 32)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.offset(of: \.size) == 4)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.offset(of: \.foreignDomid) == 6)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.offset(of: \.indexes) == 8)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.offset(of: \.gpfns) == 16)
        #expect(MemoryLayout<XenAddToPhysmapBatch>.offset(of: \.errors) == 24)
        #expect(MemoryLayout<XenRemoveFromPhysmap>.size == 16)
        #expect(MemoryLayout<XenRemoveFromPhysmap>.offset(of: \.gpfn) == 8)
        #expect(MemoryLayout<XenMemAcquireResource>.size == 32)
        #expect(MemoryLayout<XenMemAcquireResource>.offset(of: \.type) == 2)
        #expect(MemoryLayout<XenMemAcquireResource>.offset(of: \.id) == 4)
        #expect(MemoryLayout<XenMemAcquireResource>.offset(of: \.frames) == 8)
        #expect(MemoryLayout<XenMemAcquireResource>.offset(of: \.frame) == 16)
        #expect(MemoryLayout<XenMemAcquireResource>.offset(of: \.frameList) == 24)
    }

    /// xc_dom_arm's populate_guest_memory: 2 MiB extents of the new domain, then its magic pages.
    @Test mutating func populateFillsExtentsUntilOneFails() {
        let host = Host()
        #expect(reservation(.populate_physmap, extents: [0x40000, 0x40200], order: 9, host) == 2)
        #expect(host.populated.map(\.1) == [0x40000, 0x40200] && host.populated.allSatisfy { $0.0 == DomainID(5) && $0.2 == 9 })
        // A misaligned extent or one the host cannot fill ends the call: the count says how far it got.
        #expect(reservation(.populate_physmap, extents: [0x40600, 0x40801], order: 9, host) == 1)
        host.populateLimit = 0x39002
        #expect(reservation(.populate_physmap, extents: [0x39000, 0x39001, 0x39002, 0x39003], host) == 2)
        // A preempted call continues at the extent its command says; one at or past the end does nothing.
        host.populated.removeAll()
        host.populateLimit = .max
        #expect(reservation(.populate_physmap, extents: [0x50000, 0x50001, 0x50002], start: 2, host) == 3)
        #expect(host.populated.map(\.1) == [0x50002])
        #expect(reservation(.populate_physmap, extents: [0x50000], start: 1, host) == 1)
        // Past 1 GiB extents nothing is done (past 2 MiB for a domU); neither in a domain there is not.
        #expect(reservation(.populate_physmap, extents: [0], order: 19, host) == 0)
        #expect(reservation(.populate_physmap, extents: [0x40000], order: 10, domid: domidSelf, Host(caller: 5, privileged: false)) == 0)
        #expect(reservation(.populate_physmap, extents: [0x40000], domid: 9, host) == 0)
        #expect(host.populated.count == 1)
    }

    /// More than 4 MiB in one call: the rest is a continuation from the next extent, as Xen's preemption
    /// makes one (so no call holds a CPU for long, whatever its count).
    @Test mutating func aLongReservationGoesOnInContinuations() {
        let host = Host()
        let frames = (0 ..< 5).map { 0x40000 + UInt64($0) * 512 }
        let r = reservation(.populate_physmap, extents: frames, order: 9, host)
        // 2 extents of 512 pages are the budget; the third starts the next call.
        #expect(host.populated.count == 2 && host.continued == [MemoryOpCommand.populate_physmap.rawValue | 2 << 6])
        #expect(UInt64(bitPattern: r) == 0xC0_0000_0000 | MemoryOpCommand.populate_physmap.rawValue | 2 << 6)
        let next = reservation(.populate_physmap, extents: frames, order: 9, start: 2, host)
        #expect(host.populated.map(\.1) == frames.prefix(4).map { $0 } && next == Int64(bitPattern: 0xC0_0000_0000 | 6 | 4 << 6))
        #expect(reservation(.populate_physmap, extents: frames, order: 9, start: 4, host) == 5)
        #expect(host.populated.map(\.1) == frames)
    }

    /// Linux's balloon: its own pages out, one by one or by extents, and back.
    @Test mutating func aBalloonGivesItsOwnPagesBackAndTakesThemAgain() {
        let domU = Host(caller: 5, privileged: false)
        #expect(reservation(.decrease_reservation, extents: [0x41000, 0x41008], order: 1, domid: domidSelf, domU) == 2)
        #expect(domU.removed.map(\.1) == [0x41000, 0x41001, 0x41008, 0x41009] && domU.removed.allSatisfy { $0.0 == DomainID(5) })
        #expect(reservation(.decrease_reservation, extents: [0x41010, 0x666], domid: domidSelf, domU) == 1)
        #expect(reservation(.populate_physmap, extents: [0x41000], domid: 5, domU) == 1)
        // Another domain's memory is the control domain's alone.
        #expect(reservation(.populate_physmap, extents: [0x40000], domid: 0, domU) == -1)
        #expect(reservation(.decrease_reservation, extents: [0x40000], domid: 0, domU) == -1)
        #expect(domU.populated.count == 1 && domU.removed.count == 5)
    }

    mutating func batch(owner: UInt16, pairs: [(UInt64, UInt64)], domid: UInt16 = domidSelf,
                        space: XenMapSpace = .gmfn_foreign, _ host: Host) -> (Int64, [Int32]) {
        words(pairs.map(\.0), at: Self.list)
        words(pairs.map(\.1), at: Self.list + 0x400)
        memory.fill(Self.list + 0x800, count: 4 * pairs.count)
        var b = XenAddToPhysmapBatch()
        (b.domid, b.space, b.size, b.foreignDomid) = (domid, UInt16(space.rawValue), UInt16(pairs.count), owner)
        (b.indexes, b.gpfns, b.errors) = (Self.list, Self.list + 0x400, Self.list + 0x800)
        _ = memory.write(b, to: VirtualAddress(Self.arg))
        let r = Int64(bitPattern: MemoryOp.handle(MemoryOpCommand.add_to_physmap_batch.rawValue, VirtualAddress(Self.arg), &memory, host))
        let errors = (0 ..< pairs.count).map { i in
            var e: Int32 = 0
            _ = memory.read(&e, from: VirtualAddress(Self.list + 0x800 + UInt64(i) * 4))
            return e
        }
        return (r, errors)
    }

    /// privcmd's mmapbatch: one result per page, the call itself 0.
    @Test mutating func foreignMappingsAnswerPerPage() {
        let dom0 = Host()
        let (r, errors) = batch(owner: 5, pairs: [(0x40000, 0x8_0000), (0x1_0000_0000_0000, 0x8_0001), (0x40001, 0x8_0002)], dom0)
        #expect(r == 0 && errors == [0, -22, 0])
        #expect(dom0.foreign.map(\.1) == [0x40000, 0x40001] && dom0.foreign.map(\.2) == [0x8_0000, 0x8_0002])
        #expect(batch(owner: 9, pairs: [(0x40000, 0x8_0000)], dom0).1 == [-3])            // ESRCH
        #expect(batch(owner: 0, pairs: [(0x40000, 0x8_0000)], dom0).1 == [-22])           // its own: EINVAL
        #expect(batch(owner: 5, pairs: [(0x40000, 0x8_0000)], space: .gmfn_range, dom0).0 == -95)
        #expect(batch(owner: 5, pairs: [(0x40000, 0x8_0000)], domid: 5, dom0).0 == -22)
        // A domU maps nobody's pages, dom0's included.
        let domU = Host(caller: 5, privileged: false)
        #expect(batch(owner: 0, pairs: [(0x40000, 0x8_0000), (0x40001, 0x8_0001)], domU) == (0, [-1, -1]))
        #expect(domU.foreign.isEmpty && dom0.foreign.count == 2)
    }

    @Test mutating func removeFromPhysmapTakesWhatIsThere() {
        let dom0 = Host()
        var r = XenRemoveFromPhysmap()
        (r.domid, r.gpfn) = (domidSelf, 0x8_0000)
        _ = memory.write(r, to: VirtualAddress(Self.arg))
        #expect(MemoryOp.handle(MemoryOpCommand.remove_from_physmap.rawValue, VirtualAddress(Self.arg), &memory, dom0) == 0)
        #expect(dom0.removed.count == 1 && dom0.removed[0].0 == DomainID(0) && dom0.removed[0].1 == 0x8_0000)
        r.gpfn = 0x666
        _ = memory.write(r, to: VirtualAddress(Self.arg))
        #expect(MemoryOp.handle(MemoryOpCommand.remove_from_physmap.rawValue, VirtualAddress(Self.arg), &memory, dom0)
                == XenError.ENOENT.returnValue)
        r.domid = 0
        _ = memory.write(r, to: VirtualAddress(Self.arg))
        #expect(MemoryOp.handle(MemoryOpCommand.remove_from_physmap.rawValue, VirtualAddress(Self.arg), &memory,
                                Host(caller: 5, privileged: false)) == XenError.EPERM.returnValue)
    }

    mutating func acquire(domid: UInt16 = 5, type: UInt16 = 1, id: UInt32 = 0, frame: UInt64 = 0, frames: [UInt64],
                          count: UInt32? = nil, list: Bool = true, _ host: Host) -> (Int64, XenMemAcquireResource) {
        words(frames)
        var r = XenMemAcquireResource()
        (r.domid, r.type, r.id, r.frames, r.frame, r.frameList) = (domid, type, id, count ?? UInt32(frames.count), frame, list ? Self.list : 0)
        _ = memory.write(r, to: VirtualAddress(Self.arg))
        let result = Int64(bitPattern: MemoryOp.handle(MemoryOpCommand.acquire_resource.rawValue, VirtualAddress(Self.arg), &memory, host))
        var after = XenMemAcquireResource()
        _ = memory.read(&after, from: VirtualAddress(Self.arg))
        return (result, after)
    }

    /// xc_dom_gnttab_seed: frame 0 of the new domain's grant table, mapped where privcmd asks.
    @Test mutating func theGrantTableIsAResourceOfAnotherDomain() {
        let dom0 = Host()
        #expect(acquire(frames: [0x8_1000], dom0).0 == 0)
        #expect(dom0.grantFrames.count == 1 && dom0.grantFrames[0].0 == DomainID(5) && dom0.grantFrames[0].1 == 0 && dom0.grantFrames[0].2 == 0x8_1000)
        #expect(acquire(frame: 62, frames: [0x8_2000, 0x8_2001], dom0).0 == 0)
        #expect(dom0.grantFrames.map(\.1) == [0, 62, 63])
        // How many frames: no list, no count.
        let (r, size) = acquire(frames: [], count: 0, list: false, dom0)
        #expect(r == 0 && size.frames == 64)
        #expect(acquire(frames: [], count: 1, list: false, dom0).0 == -22)
        // Past the table, the status frames, other resources, no such domain.
        #expect(acquire(frame: 63, frames: [1, 2], dom0).0 == -22)
        #expect(acquire(id: 1, frames: [1], dom0).0 == -22)
        #expect(acquire(type: 0, frames: [1], dom0).0 == -95)                             // ioreq server
        #expect(acquire(domid: 9, frames: [1], dom0).0 == -3)
        // Its own (DOMID_SELF or by number), or a domU asking at all: -EPERM.
        #expect(acquire(domid: domidSelf, frames: [1], dom0).0 == -1)
        #expect(acquire(domid: 0, frames: [1], dom0).0 == -1)
        #expect(acquire(domid: 0, frames: [1], Host(caller: 5, privileged: false)).0 == -1)
        #expect(dom0.grantFrames.count == 3)
        // More than Xen's 32 at once are fine: 4.17 goes through them 32 at a time.
        #expect(acquire(frames: (0 ..< 40).map { 0x9_0000 + UInt64($0) }, dom0).0 == 0)
        #expect(dom0.grantFrames.count == 43)
    }
}
