import Testing
@testable import TernCore

@Suite struct ForeignMappingsTests {
    private func mapping(_ n: UInt64) -> ForeignMapping<DomainID> { ForeignMapping(owner: DomainID(UInt16(n % 7 + 1)), frame: HostPhysicalAddress(n << 12)) }

    /// privcmd's pattern: a whole kernel's pages mapped, then unmapped one by one, then again.
    @Test func thousandsMappedUnmappedAndMappedAgain() {
        var m = ForeignMappings<DomainID>()
        for round in 0 ..< 3 {
            for n in UInt64(0) ..< 5000 {
                let inserted = m.insert(GuestFrameNumber(0x8_0000 + n), mapping(n + UInt64(round)))
                #expect(inserted == .added)
            }
            #expect(m.count == 5000)
            #expect(m.lookup(GuestFrameNumber(0x8_0000 + 4321)) == mapping(4321 + UInt64(round)))
            #expect(m.lookup(GuestFrameNumber(0x7_FFFF)) == nil)
            for n in UInt64(0) ..< 5000 where n % 2 == 0 {
                let gone = m.remove(GuestFrameNumber(0x8_0000 + n))
                #expect(gone == mapping(n + UInt64(round)))
            }
            #expect(m.count == 2500)
            // What stays is found past the removed slots; nothing is there twice.
            #expect(m.lookup(GuestFrameNumber(0x8_0001)) == mapping(1 + UInt64(round)))
            let again = m.insert(GuestFrameNumber(0x8_0001), mapping(9))
            #expect(again == .present)
            let none = m.remove(GuestFrameNumber(0x8_0000))
            #expect(none == nil)
            for n in UInt64(0) ..< 5000 where n % 2 == 1 {
                let gone = m.remove(GuestFrameNumber(0x8_0000 + n))
                #expect(gone != nil)
            }
            #expect(m.count == 0)
        }
    }

    @Test func removeAllHandsBackEveryMapping() {
        var m = ForeignMappings<DomainID>()
        let nothing = m.removeAll()
        #expect(nothing.isEmpty)
        for n in UInt64(0) ..< 40 { _ = m.insert(GuestFrameNumber(n * 512), mapping(n)) }
        _ = m.remove(GuestFrameNumber(512))
        let all = m.removeAll()
        #expect(all.count == 39 && m.count == 0 && m.lookup(GuestFrameNumber(0)) == nil)
        let expected: Set<UInt64> = Set((UInt64(0) ..< 40).filter { $0 != 1 }.map { $0 * 512 })
        let found: Set<UInt64> = Set(all.map { $0.0.raw })
        #expect(found == expected)
        for (gfn, found) in all { #expect(found == mapping(gfn.raw / 512)) }
    }

    /// The table never grows past what the heap can give: beyond it an insert says so, and changes nothing.
    @Test func aFullTableRefusesMore() {
        var m = ForeignMappings<DomainID>()
        var n: UInt64 = 0
        while true {
            let r = m.insert(GuestFrameNumber(n), mapping(n))
            if r == .full { break }
            #expect(r == .added)
            n += 1
        }
        #expect(n >= UInt64(ForeignMappings<DomainID>.maximumSlots / 4) && n <= UInt64(ForeignMappings<DomainID>.maximumSlots / 2))
        #expect(m.count == Int(n) && m.lookup(GuestFrameNumber(n)) == nil && m.lookup(GuestFrameNumber(n - 1)) == mapping(n - 1))
        // One going is not enough to be worth clearing the table; an eighth of it is.
        _ = m.remove(GuestFrameNumber(0))
        let still = m.insert(GuestFrameNumber(n), mapping(n))
        #expect(still == .full)
        for k in UInt64(1) ..< UInt64(ForeignMappings<DomainID>.maximumSlots / 8) { _ = m.remove(GuestFrameNumber(k)) }
        let again = m.insert(GuestFrameNumber(n), mapping(n))
        #expect(again == .added)
        #expect(m.lookup(GuestFrameNumber(n - 1)) == mapping(n - 1) && m.lookup(GuestFrameNumber(n)) == mapping(n))
    }
}
