import Testing
@testable import TernCore

/// `register` is mutating, which #expect cannot call on its own.
private func add(_ m: inout MMIORegions, _ device: EmulatedDevice, base: GuestPhysicalAddress, size: UInt64) -> Bool {
    m.register(device, base: base, size: size)
}

@Suite struct MMIORegionsTests {
    @Test func findsTheDeviceAndOffsetAtEveryEdge() {
        var m = MMIORegions()
        #expect(add(&m, .gicDistributor, base: GuestPhysicalAddress(0x0300_0000), size: 0x1_0000))
        #expect(add(&m, .gicRedistributors, base: GuestPhysicalAddress(0x0302_0000), size: 2 * 0x2_0000))
        #expect(add(&m, .uart, base: GuestPhysicalAddress(0x2200_0000), size: 0x1000))
        #expect(m.count == 3)
        #expect(m.find(GuestPhysicalAddress(0x0300_0000))! == (.gicDistributor, 0))
        #expect(m.find(GuestPhysicalAddress(0x0300_FFFF))! == (.gicDistributor, 0xFFFF))
        #expect(m.find(GuestPhysicalAddress(0x0301_0000)) == nil)       // the hole between them
        #expect(m.find(GuestPhysicalAddress(0x0305_FFFC))! == (.gicRedistributors, 0x3_FFFC))
        #expect(m.find(GuestPhysicalAddress(0x0306_0000)) == nil)
        #expect(m.find(GuestPhysicalAddress(0x2200_0018))! == (.uart, 0x18))
        #expect(m.find(GuestPhysicalAddress(0x02FF_FFFF)) == nil)
        #expect(m.find(GuestPhysicalAddress(0)) == nil)
        #expect(m.find(GuestPhysicalAddress(.max)) == nil)
    }

    @Test func refusesOverlapsEmptyAndWrappingRangesAndTooMany() {
        var m = MMIORegions()
        #expect(add(&m, .uart, base: GuestPhysicalAddress(0x1000), size: 0x1000))
        #expect(!add(&m, .gicDistributor, base: GuestPhysicalAddress(0x1FFF), size: 0x10))
        #expect(!add(&m, .gicDistributor, base: GuestPhysicalAddress(0x0), size: 0x1001))
        #expect(!add(&m, .gicDistributor, base: GuestPhysicalAddress(0x3000), size: 0))
        #expect(!add(&m, .gicDistributor, base: GuestPhysicalAddress(.max - 0xF), size: 0x20))
        #expect(add(&m, .gicDistributor, base: GuestPhysicalAddress(.max - 0xF), size: 0x10))
        #expect(m.find(GuestPhysicalAddress(.max))! == (.gicDistributor, 0xF))
        #expect(add(&m, .gicRedistributors, base: GuestPhysicalAddress(0x2000), size: 0x1000))
        #expect(add(&m, .uart, base: GuestPhysicalAddress(0x5000), size: 0x1000))
        #expect(!add(&m, .uart, base: GuestPhysicalAddress(0x9000), size: 0x1000))   // a fifth
        #expect(m.count == MMIORegions.capacity)
        #expect(m.find(GuestPhysicalAddress(0x1FFF))! == (.uart, 0xFFF))
    }
}
