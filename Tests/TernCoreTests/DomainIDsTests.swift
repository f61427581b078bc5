import Testing
@testable import TernCore

/// Domain IDs: what a boot configuration may name, and how later domains get theirs.
@Suite struct DomainIDsTests {
    @Test func bootIDsMayBeAnyUnreservedNumberOnce() {
        #expect(DomainIDs.check([]) == nil)
        #expect(DomainIDs.check([0, 1, 2]) == nil)
        #expect(DomainIDs.check([7, 300, 0x7FEF]) == nil)          // far beyond the slot count
        #expect(DomainIDs.check([0, 0x7FF0]) == .reserved(index: 1, id: 0x7FF0))   // DOMID_SELF
        #expect(DomainIDs.check([0x1_0005]) == .reserved(index: 0, id: 0x1_0005))  // not cut to 5
        #expect(DomainIDs.check([3, 1, 3]) == .repeated(index: 2, first: 0, id: 3))
    }

    @Test func theRoverHandsOutTheNextFreeIDAndWraps() {
        var inUse: Set<UInt16> = [0, 1, 2]
        var ids = DomainIDAllocator(after: 2)
        let next = ids.allocate { inUse.contains($0.raw) }
        #expect(next == DomainID(3))
        inUse.insert(3)
        inUse.remove(1)                                         // destroyed: not reused at once
        #expect(ids.allocate { inUse.contains($0.raw) } == DomainID(4))
        var high = DomainIDAllocator(after: 0x7FEE)
        #expect(high.allocate { _ in false } == DomainID(0x7FEF))
        #expect(high.allocate { inUse.contains($0.raw) } == DomainID(1))   // past the reserved range, never 0
    }

    @Test func aFullRangeGivesNoID() {
        var ids = DomainIDAllocator()
        #expect(ids.allocate { _ in true } == nil)
        #expect(ids.allocate { $0.raw != 0x7FEF } == DomainID(0x7FEF))
    }

    /// Lists come out in ID order, as Xen lists its domains; equal IDs keep their order.
    @Test func sortingByDomainIDIsStable() {
        var random = SeededRandom(state: 0xD0)
        for length in [0, 1, 2, 7, 64] {
            var items = (0 ..< length).map { i in (id: DomainID(UInt16(random.next() % 9)), order: i) }
            let expected = items.sorted { $0.id.raw < $1.id.raw || $0.id.raw == $1.id.raw && $0.order < $1.order }
            items.sortByDomainID { $0.id }
            #expect(items.map(\.id) == expected.map(\.id) && items.map(\.order) == expected.map(\.order))
        }
    }
}
