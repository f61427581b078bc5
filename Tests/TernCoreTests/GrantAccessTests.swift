import Testing
import TernCore

struct GrantAccessTests {
    let backend = DomainID(2)
    func header(_ flags: UInt16, _ domid: UInt16) -> UInt32 { UInt32(flags) | UInt32(domid) << 16 }

    /// A reference names an entry of 8 bytes, 512 to a grant frame; it is the uint32_t of Xen's structures.
    @Test func aGrantRefNamesItsFrameAndEntry() {
        #expect(MemoryLayout<GrantRef>.size == 4)
        #expect(GrantRef(0).frameIndex == 0 && GrantRef(0).offsetInFrame == 0)
        #expect(GrantRef(511).frameIndex == 0 && GrantRef(511).offsetInFrame == 4088)
        #expect(GrantRef(513).frameIndex == 1 && GrantRef(513).offsetInFrame == 8)
        #expect(GrantRef(.max).frameIndex == Int(UInt32.max) / 512)
    }

    @Test func aWritableGrantIsMarkedReadingAndWriting() throws {
        let h = header(GrantFlags.permitAccess, 2)
        let claimed = try GrantAccess.claim(header: h, by: backend, readOnly: false, mark: true).get()
        #expect(claimed == header(GrantFlags.permitAccess | GrantFlags.reading | GrantFlags.writing, 2))
        let read = try GrantAccess.claim(header: h, by: backend, readOnly: true, mark: true).get()
        #expect(read == header(GrantFlags.permitAccess | GrantFlags.reading, 2))
        #expect(try GrantAccess.claim(header: h, by: backend, readOnly: false, mark: false).get() == h)
    }

    @Test func grantsForOthersInvalidOrReadOnlyAreRefused() {
        func status(_ h: UInt32, readOnly: Bool = false) -> GrantStatus? {
            if case .failure(let e) = GrantAccess.claim(header: h, by: backend, readOnly: readOnly, mark: true) { return e.status }
            return nil
        }
        #expect(status(header(GrantFlags.permitAccess, 3)) == .generalError)
        #expect(status(header(0, 2)) == .generalError)
        #expect(status(header(2, 2)) == .generalError)           // accept_transfer
        #expect(status(header(GrantFlags.permitAccess | GrantFlags.readOnly, 2)) == .generalError)
        #expect(status(header(GrantFlags.permitAccess | GrantFlags.readOnly, 2), readOnly: true) == nil)
    }

    @Test func flagsClearOnlyWhenTheLastUseGoes() {
        var a = ActiveGrants()
        _ = a.add(7, readOnly: false)
        _ = a.add(7, readOnly: true)
        #expect(a.total == 2)
        #expect(a.remove(7, readOnly: false) == GrantFlags.writing)
        #expect(a.remove(7, readOnly: true) == GrantFlags.reading | GrantFlags.writing)
        #expect(a.total == 0)
        #expect(a.remove(7, readOnly: true) == 0)          // nothing to drop
        #expect(a.total == 0)
    }

    /// Xen keeps each use count of a grant (mapped writable, mapped read-only) in a byte and refuses a
    /// use that could overflow it: the 129th of a kind. Tern had no limit.
    @Test func aGrantTakesAtMost128UsesOfAKind() {
        var a = ActiveGrants()
        var taken = 0
        for _ in 0 ..< 200 where a.add(9, readOnly: false) { taken += 1 }
        #expect(taken == 128 && a.total == 128)
        let otherKind = a.add(9, readOnly: true)            // the other kind has its own count
        let otherGrant = a.add(10, readOnly: false)         // and each grant its own
        #expect(otherKind && otherGrant)
        _ = a.remove(9, readOnly: false)
        let again = a.add(9, readOnly: false)
        #expect(again)
    }

    /// Every grant of the largest table counted apart (a dom0 serving busy disks holds thousands at
    /// once); a reference past any table is not counted at all.
    @Test func everyGrantOfTheLargestTableIsCountedApart() {
        var a = ActiveGrants()
        let refs = UInt32(GrantTableOp.maximumFrames * 512)
        for ref in 0 ..< refs { #expect(a.add(GrantRef(ref), readOnly: ref % 2 == 0) == true) }
        for ref in 0 ..< refs where ref % 5 == 0 { #expect(a.add(GrantRef(ref), readOnly: false) == true) }
        #expect(a.total == Int(refs) + Int((refs + 4) / 5))
        #expect(!a.add(GrantRef(refs), readOnly: false) && !a.add(GrantRef(.max), readOnly: true))
        #expect(a.remove(GrantRef(.max), readOnly: true) == 0)
        #expect(a.remove(GrantRef(10), readOnly: false) == GrantFlags.writing)
        #expect(a.remove(GrantRef(10), readOnly: false) == GrantFlags.writing)     // none of that kind left: the count stays
        #expect(a.remove(GrantRef(10), readOnly: true) == GrantFlags.reading | GrantFlags.writing)
        #expect(a.remove(GrantRef(11), readOnly: false) == GrantFlags.reading | GrantFlags.writing)
        #expect(a.total == Int(refs) + Int((refs + 4) / 5) - 3)
    }

    /// Pages for a maptrack's frames, as the hypervisor's frame allocator gives them; `limit` of them.
    final class FramePages {
        var given: [UnsafeMutableRawPointer] = []
        let limit: Int
        init(limit: Int = .max) { self.limit = limit }
        func take() -> UnsafeMutableRawPointer? {
            guard given.count < limit else { return nil }
            let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
            page.initializeMemory(as: UInt8.self, repeating: 0xA5, count: 4096)     // not zeroed, as the allocator's
            given.append(page)
            return page
        }
        deinit { for page in given { page.deallocate() } }
    }

    @Test func handlesAreReusedAndUnknownOnesRefused() throws {
        let pages = FramePages()
        var m = Maptrack()
        let e = Maptrack.Entry(granter: DomainID(1), ref: 8, frame: HostPhysicalAddress(0x4280_1000),
                               address: GuestPhysicalAddress(0x2000_0000), readOnly: false)
        let h0 = try m.add(e, newFrame: pages.take).get(), h1 = try m.add(e, newFrame: pages.take).get()
        #expect(h0 == 0 && h1 == 1 && m.count == 2)
        #expect(m.remove(handle: 0) == e)
        #expect(m.remove(handle: 0) == nil && m.remove(handle: 99) == nil && m.remove(handle: 1 << 20) == nil)
        #expect(m.entry(0) == nil && m.entry(1) == e)
        #expect(try m.add(e, newFrame: pages.take).get() == 0)
        #expect(m.holds(frame: HostPhysicalAddress(0x4280_1000)) && !m.holds(frame: HostPhysicalAddress(0x4280_2000)))
        #expect(pages.given.count == 1)
    }

    /// Xen's maptrack: 16-byte entries, 256 to a page, pages added as the domain maps more, up to
    /// max_maptrack_frames (1024 unless its creator says: 262,144 handles); then GNTST_no_space (-13).
    @Test func theMaptrackGrowsAFrameAtATimeToItsLimitThenSaysNoSpace() throws {
        #expect(GrantStatus.noSpace.rawValue == -13)
        #expect(Maptrack.entriesPerFrame == 256 && Maptrack.defaultFrames == 1024)
        let pages = FramePages()
        var m = Maptrack(frameLimit: 3)
        func entry(_ i: Int) -> Maptrack.Entry {
            Maptrack.Entry(granter: DomainID(UInt16(i % 0x7FF0)), ref: GrantRef(UInt32(i * 7 % 16384)),
                           frame: HostPhysicalAddress(0xFF_FFFF_F000 - UInt64(i) * 0x1000),
                           address: GuestPhysicalAddress(0xFF_0000_0000 + UInt64(i) * 0x1000), readOnly: i % 3 == 0)
        }
        for i in 0 ..< 3 * 256 {
            #expect(try m.add(entry(i), newFrame: pages.take).get() == UInt32(i))
            if i % 256 == 0 { #expect(pages.given.count == i / 256 + 1) }
        }
        #expect(m.add(entry(0), newFrame: pages.take) == .failure(GrantStatusError(.noSpace)))
        #expect(pages.given.count == 3 && m.count == 768)
        // Every entry reads back as it was made: nothing of one spills into another.
        for i in [0, 1, 255, 256, 511, 700, 767] { #expect(m.entry(UInt32(i)) == entry(i)) }
        // A freed handle is the next one given, in whichever frame it was.
        #expect(m.remove(handle: 300) == entry(300) && m.remove(handle: 5) == entry(5))
        #expect(try m.add(entry(1000), newFrame: pages.take).get() == 5)
        #expect(try m.add(entry(1001), newFrame: pages.take).get() == 300)
        #expect(m.entry(300) == entry(1001) && pages.given.count == 3)
        // No page to be had is the same answer, and the table is as it was.
        var n = Maptrack()
        #expect(n.add(entry(1), newFrame: { nil }) == .failure(GrantStatusError(.noSpace)) && n.count == 0)
        #expect(Maptrack().frameLimit == 1024)
    }

    /// What does not fit an entry (a frame past 2^52, a reference past 2^24) is refused, not cut short.
    @Test func anEntryThatDoesNotFitIsRefused() {
        let pages = FramePages()
        var m = Maptrack()
        let far = Maptrack.Entry(granter: DomainID(1), ref: 8, frame: HostPhysicalAddress(1 << 52),
                                 address: GuestPhysicalAddress(0x2000_0000), readOnly: false)
        let farGuest = Maptrack.Entry(granter: DomainID(1), ref: 8, frame: HostPhysicalAddress(0x4000_0000),
                                      address: GuestPhysicalAddress(1 << 52), readOnly: false)
        let bigRef = Maptrack.Entry(granter: DomainID(1), ref: GrantRef(1 << 24), frame: HostPhysicalAddress(0x4000_0000),
                                    address: GuestPhysicalAddress(0x2000_0000), readOnly: false)
        for e in [far, farGuest, bigRef] { #expect(m.add(e, newFrame: pages.take) == .failure(GrantStatusError(.generalError))) }
        #expect(m.count == 0)
    }

    /// A dead domain's mappings are taken out a frame at a time (to give each granter its use back
    /// outside the table's lock, and not all at once under the scheduler's), with the frames to free;
    /// reservations never made into mappings go too.
    @Test func aDeadDomainsTableIsTakenOutAPieceAtATime() throws {
        let pages = FramePages()
        var m = Maptrack(frameLimit: 3)
        func entry(_ i: Int) -> Maptrack.Entry {
            Maptrack.Entry(granter: DomainID(3), ref: GrantRef(UInt32(i)), frame: HostPhysicalAddress(0x4280_1000),
                           address: GuestPhysicalAddress(0x2000_0000 + UInt64(i) * 4096), readOnly: i % 2 == 0)
        }
        for i in 0 ..< 600 { _ = try m.add(entry(i), newFrame: pages.take).get() }
        _ = m.remove(handle: 17)
        _ = m.remove(handle: 599)
        _ = try m.reserve(newFrame: pages.take).get()           // 599 again, reserved only
        var seen: [Int] = [], freed = 0, rounds = 0
        while true {
            let (entries, emptied, done) = m.takeOut(frames: 1)
            #expect(entries.count <= 256 && emptied.count == 1)
            seen += entries.map { Int($0.ref.raw) }
            for e in entries { #expect(e == entry(Int(e.ref.raw))) }
            freed += emptied.count
            rounds += 1
            if done { break }
            #expect(rounds < 20)
        }
        #expect(seen.sorted() == (0 ..< 599).filter { $0 != 17 })
        #expect(freed == 3 && m.frames.isEmpty && m.count == 0 && m.entry(0) == nil && rounds == 3)
        // Asked for none, it still takes a frame: a caller looping until done always gets there.
        var n = Maptrack()
        _ = try n.add(entry(1), newFrame: pages.take).get()
        let out = n.takeOut(frames: 0)
        #expect(out.done && out.emptied.count == 1)
    }

    /// A map takes its handle before it looks at the grant, as Xen's: a reservation is no mapping (it
    /// cannot be unmapped), and one not made into a mapping is given back.
    @Test func aReservedHandleIsNoMappingUntilFilled() throws {
        let pages = FramePages()
        var m = Maptrack(frameLimit: 1)
        let e = Maptrack.Entry(granter: DomainID(1), ref: 8, frame: HostPhysicalAddress(0x4280_1000),
                               address: GuestPhysicalAddress(0x2000_0000), readOnly: false)
        let h = try m.reserve(newFrame: pages.take).get()
        #expect(m.entry(h) == nil && m.remove(handle: h) == nil && m.count == 1)
        #expect(!m.holds(frame: e.frame))
        #expect(m.fill(h, with: e) && m.entry(h) == e && m.holds(frame: e.frame))
        #expect(m.fill(h, with: e) == false)                    // filled already
        m.release(reserved: h)                                  // a mapping is not a reservation
        #expect(m.entry(h) == e && m.count == 1)
        let h2 = try m.reserve(newFrame: pages.take).get()
        var far = e
        far.frame = HostPhysicalAddress(1 << 53)
        #expect(m.fill(h2, with: far) == false)
        m.release(reserved: h2)
        #expect(m.count == 1)
        #expect(try m.reserve(newFrame: pages.take).get() == h2)
    }
}
