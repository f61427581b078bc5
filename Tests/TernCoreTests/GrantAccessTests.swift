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

    @Test func handlesAreReusedAndUnknownOnesRefused() {
        var m = Maptrack()
        let e = Maptrack.Entry(granter: DomainID(1), ref: 8, frame: HostPhysicalAddress(0x4280_1000),
                               address: GuestPhysicalAddress(0x2000_0000), readOnly: false)
        let h0 = m.add(e), h1 = m.add(e)
        #expect(h0 == 0 && h1 == 1)
        #expect(m.remove(handle: 0) == e)
        #expect(m.remove(handle: 0) == nil && m.remove(handle: 99) == nil)
        #expect(m.add(e) == 0)
        #expect(m.isMapped(at: GuestPhysicalAddress(0x2000_0000)))
        #expect(m.holds(frame: HostPhysicalAddress(0x4280_1000)) && !m.holds(frame: HostPhysicalAddress(0x4280_2000)))
    }
}
