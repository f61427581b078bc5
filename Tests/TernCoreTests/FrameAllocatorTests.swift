import Testing
@testable import TernCore

private func range(_ base: UInt64, _ end: UInt64) -> PhysicalRange {
    PhysicalRange(base: HostPhysicalAddress(base), end: HostPhysicalAddress(end))
}

@Suite struct FrameAllocatorTests {
    @Test func physicalRangeKeepsEndAndSizeInStep() {
        var r = PhysicalRange(base: HostPhysicalAddress(0x1000), size: 0x3000)
        #expect(r.end == HostPhysicalAddress(0x4000))
        r.end = HostPhysicalAddress(0x8000)
        #expect(r.size == 0x7000)
        #expect(r == range(0x1000, 0x8000))
    }

    @Test func addFreeShrinksToWholeFrames() {
        var a = FrameAllocator()
        a.addFree(range(0x4000_0123, 0x4001_0fff))
        #expect(a.ranges == [range(0x4000_1000, 0x4001_0000)])
        #expect(a.freePages == 15)
        a.addFree(range(0x5000_0001, 0x5000_0fff))  // no whole frame inside
        #expect(a.ranges.count == 1)
    }

    @Test func addFreeMergesAdjacentAndOverlappingRanges() {
        var a = FrameAllocator()
        a.addFree(range(0x10_0000, 0x20_0000))
        a.addFree(range(0x40_0000, 0x50_0000))
        a.addFree(range(0x20_0000, 0x30_0000))  // touches the first
        #expect(a.ranges == [range(0x10_0000, 0x30_0000), range(0x40_0000, 0x50_0000)])
        a.addFree(range(0x28_0000, 0x48_0000))  // bridges both, overlapping each
        #expect(a.ranges == [range(0x10_0000, 0x50_0000)])
        #expect(a.freePages == 0x40_0000 / 4096)
        a.addFree(range(0x0, 0x1000))  // below everything, not touching
        #expect(a.ranges.first == range(0x0, 0x1000))
        #expect(a.freePages == 0x40_0000 / 4096 + 1)
    }

    @Test func reserveCarvesOutWholeFrames() {
        var a = FrameAllocator()
        a.addFree(range(0x4000_0000, 0x4800_0000))
        // An image that ends mid-frame takes that whole frame with it.
        a.reserve(PhysicalRange(base: HostPhysicalAddress(0x4008_0000), size: 0x1_2345))
        #expect(a.ranges == [range(0x4000_0000, 0x4008_0000), range(0x4009_3000, 0x4800_0000)])
        // A DTB straddling the start, and one straddling a gap, trim neighbours.
        a.reserve(range(0x3fff_0000, 0x4000_2000))
        a.reserve(range(0x4007_f000, 0x4009_4000))
        #expect(a.ranges == [range(0x4000_2000, 0x4007_f000), range(0x4009_4000, 0x4800_0000)])
        // Reserving across whole ranges removes them.
        a.reserve(range(0x0, 0x4100_0000))
        #expect(a.ranges == [range(0x4100_0000, 0x4800_0000)])
        #expect(a.freePages == 0x700_0000 / 4096)
        a.reserve(range(0x4800_0000, 0x4900_0000))  // nothing there
        #expect(a.freePages == 0x700_0000 / 4096)
    }

    @Test func allocateTakesTheLowestFitHonouringAlignment() {
        var a = FrameAllocator()
        a.addFree(range(0x1000, 0x3000))  // 2 frames
        a.addFree(range(0x10_1000, 0x60_0000))
        #expect(a.allocate(pages: 3) == HostPhysicalAddress(0x10_1000))  // the first range is too small
        #expect(a.allocate(pages: 1) == HostPhysicalAddress(0x1000))
        #expect(a.allocate(pages: 512, alignment: 0x20_0000) == HostPhysicalAddress(0x20_0000))
        #expect(a.ranges == [range(0x2000, 0x3000), range(0x10_4000, 0x20_0000), range(0x40_0000, 0x60_0000)])
        #expect(a.allocate(pages: 1, alignment: 0x40_0000) == HostPhysicalAddress(0x40_0000))
        #expect(a.allocate(pages: 0x1000) == nil)
        #expect(a.allocate(pages: 0) == nil)
        #expect(a.allocate(pages: 1, alignment: 0x100_0000) == nil)
    }

    @Test func allocateUntilExhausted() {
        var a = FrameAllocator()
        a.addFree(range(0x8000_0000, 0x8001_0000))
        var got: [HostPhysicalAddress] = []
        while let f = a.allocate(pages: 1) { got.append(f) }
        #expect(got.count == 16)
        #expect(got == (0..<16).map { HostPhysicalAddress(0x8000_0000 + UInt64($0) * 4096) })
        #expect(a.freePages == 0)
        #expect(a.ranges.isEmpty)
    }

    @Test func freeCoalescesBackToTheOriginalRange() {
        var a = FrameAllocator()
        a.addFree(range(0x4000_0000, 0x4010_0000))
        let x = a.allocate(pages: 4)!
        let y = a.allocate(pages: 8)!
        let z = a.allocate(pages: 2)!
        #expect(a.freePages == 256 - 14)
        a.free(y, pages: 8)  // a hole between x and z
        #expect(a.ranges.count == 2)
        a.free(x, pages: 4)
        #expect(a.ranges.count == 2)
        a.free(z, pages: 2)  // bridges both sides
        #expect(a.ranges == [range(0x4000_0000, 0x4010_0000)])
        #expect(a.freePages == 256)
    }

    @Test func freedFramesAreReused() {
        var a = FrameAllocator()
        a.addFree(range(0x1000, 0x11000))
        _ = a.allocate(pages: 16)
        a.free(HostPhysicalAddress(0x5000), pages: 2)
        #expect(a.allocate(pages: 3) == nil)
        #expect(a.allocate(pages: 2) == HostPhysicalAddress(0x5000))
    }

    @Test func rangeContainsWholeSpansOnly() {
        let r = range(0x4000_0000, 0x4000_2000)
        #expect(r.contains(HostPhysicalAddress(0x4000_0000)) && r.contains(HostPhysicalAddress(0x4000_1FFF)))
        #expect(!r.contains(HostPhysicalAddress(0x4000_2000)) && !r.contains(HostPhysicalAddress(0x3FFF_FFFF)))
        #expect(r.contains(HostPhysicalAddress(0x4000_1000), length: 0x1000))
        #expect(!r.contains(HostPhysicalAddress(0x4000_1008), length: 0x1000))
        #expect(!r.contains(HostPhysicalAddress(0x4000_0000), length: 0x3000))
        #expect(!r.contains(HostPhysicalAddress(.max - 8), length: 16))      // no wrap-around
    }
}
