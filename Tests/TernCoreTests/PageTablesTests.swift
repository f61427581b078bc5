import Testing
@testable import TernCore

/// Table pages in a dictionary; touching a page that was never handed out traps, which catches a walker
/// following a leaf as if it were a table.
private struct FakeTableMemory: TableMemory {
    var pages: [UInt64: [UInt64]] = [:]
    var nextPage: UInt64 = 0x7_0000_0000
    var limit = Int.max

    mutating func allocateTablePage() -> HostPhysicalAddress? {
        guard pages.count < limit else { return nil }
        let page = nextPage
        nextPage += 4096
        pages[page] = Array(repeating: 0, count: 512)
        return HostPhysicalAddress(page)
    }

    func load(_ table: HostPhysicalAddress, _ index: Int) -> UInt64 { pages[table.raw]![index] }

    mutating func store(_ table: HostPhysicalAddress, _ index: Int, _ value: UInt64) {
        precondition(pages[table.raw] != nil)
        pages[table.raw]![index] = value
    }

    func next(_ descriptor: UInt64) -> HostPhysicalAddress {
        #expect(descriptor & 0b11 == 0b11)
        return HostPhysicalAddress(descriptor & 0x0000_FFFF_FFFF_F000)
    }

    func validEntries(_ table: HostPhysicalAddress) -> Int { pages[table.raw]!.filter { $0 & 1 != 0 }.count }
}

private let GiB: UInt64 = 1 << 30
private let MiB: UInt64 = 1 << 20
private let rw: Permissions = [.read, .write]
private let rwx: Permissions = [.read, .write, .execute]

@Suite struct PageTableTests {
    @Test func blocksAreUsedWhereAlignmentAllows() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        // 1 GiB + 2 MiB + 8 KiB, all aligned: one of each kind of leaf.
        try s2.map(GuestPhysicalAddress(GiB), to: HostPhysicalAddress(2 * GiB), size: GiB + 2 * MiB + 8192,
                   type: .normal, permissions: rw, memory: &memory)
        let l1 = s2.root
        #expect(memory.load(l1, 1) & 0b11 == 0b01)  // 1 GiB block
        #expect(memory.load(l1, 1) & 0x0000_FFFF_FFFF_F000 == 2 * GiB)
        let l2 = memory.next(memory.load(l1, 2))
        #expect(memory.load(l2, 0) & 0b11 == 0b01)  // 2 MiB block
        let l3 = memory.next(memory.load(l2, 1))
        #expect(memory.load(l3, 0) & 0b11 == 0b11)  // pages
        #expect(memory.load(l3, 1) & 0b11 == 0b11)
        #expect(memory.validEntries(l3) == 2)
        #expect(memory.pages.count == 3)
    }

    @Test func unalignedEdgesUsePagesAndTheMiddleUsesBlocks() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        // [0x1000, 0x401000) with the PA at the same offset within 2 MiB: 511 pages, a block, one page.
        try s2.map(GuestPhysicalAddress(0x1000), to: HostPhysicalAddress(0x8000_1000), size: 0x40_0000,
                   type: .normal, permissions: rw, memory: &memory)
        let l2 = memory.next(memory.load(s2.root, 0))
        let low = memory.next(memory.load(l2, 0))
        #expect(memory.validEntries(low) == 511)
        #expect(memory.load(low, 0) == 0)
        #expect(memory.load(l2, 1) & 0b11 == 0b01)
        #expect(memory.load(l2, 1) & 0x0000_FFFF_FFFF_F000 == 0x8020_0000)
        let high = memory.next(memory.load(l2, 2))
        #expect(memory.validEntries(high) == 1)

        // The same IPA range against a PA aligned only to 4 KiB relative to it gets no blocks at all.
        var other = FakeTableMemory()
        var t = try Stage2Table(memory: &other)
        try t.map(GuestPhysicalAddress(0x20_0000), to: HostPhysicalAddress(0x8000_1000), size: 0x40_0000,
                  type: .normal, permissions: rw, memory: &other)
        let l2b = other.next(other.load(t.root, 0))
        #expect(other.validEntries(other.next(other.load(l2b, 1))) == 512)
        #expect(other.validEntries(other.next(other.load(l2b, 2))) == 512)
        #expect(other.pages.count == 4)
    }

    @Test func removingAPageSplitsTheBlocksAboveItBreakingBeforeMaking() throws {
        let shared = SharedTableMemory()
        var memory = shared
        var s2 = try Stage2Table(memory: &memory)
        // 1 GiB + 2 MiB at 0x4000_0000: a level-1 block and a level-2 block.
        try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x1_0000_0000), size: GiB + 2 * MiB,
                   type: .normal, permissions: rwx, memory: &memory)
        var invalidated: [UInt64] = []
        var entriesWhenInvalidated: [UInt64] = []
        let gone = GuestPhysicalAddress(0x4012_3000)
        let root = s2.root
        let removed = s2.removePage(gone, memory: &memory) { ipa in
            invalidated.append(ipa.raw)
            // The entry being replaced, as the TLBs are told to forget it: it must be invalid by then.
            let l1 = shared.storage.pages[root.raw]![1]
            entriesWhenInvalidated.append(invalidated.count == 1 ? l1 : shared.storage.pages[l1 & 0xFFFF_FFFF_F000]![0])
        }
        #expect(removed == HostPhysicalAddress(0x1_0012_3000))
        #expect(invalidated == [0x4000_0000, 0x4000_0000])
        #expect(entriesWhenInvalidated == [0, 0])
        #expect(s2.translate(gone, memory: memory) == nil)
        // Every other page keeps its frame and its permissions, in the split block and beside it.
        for ipa: UInt64 in [0x4012_2000, 0x4012_4000, 0x4000_0000, 0x7FFF_F000, 0x8000_0000, 0x801F_F000] {
            let t = s2.translate(GuestPhysicalAddress(ipa), memory: memory)
            #expect(t?.pa == HostPhysicalAddress(ipa - 0x4000_0000 + 0x1_0000_0000))
            #expect(t?.permissions == rwx && t?.type == .normal && t?.borrowed == false)
        }
        // The hole takes another page; removing it again or an unmapped page changes nothing.
        try s2.map(gone, to: HostPhysicalAddress(0x9000_0000), size: 4096, type: .normal, permissions: rw, memory: &memory)
        #expect(s2.translate(gone, memory: memory)?.pa == HostPhysicalAddress(0x9000_0000))
        #expect(s2.removePage(gone, memory: &memory) { _ in Issue.record("nothing to split") } == HostPhysicalAddress(0x9000_0000))
        #expect(s2.removePage(gone, memory: &memory) { _ in } == nil)
        #expect(s2.removePage(GuestPhysicalAddress(0x2000_0000), memory: &memory) { _ in } == nil)
    }

    /// A grant or foreign mapping is marked as another domain's page; the domain's own are not.
    @Test func borrowedPagesSaySo() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x8000_0000), size: 4096, type: .normal,
                   permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4000_1000), to: HostPhysicalAddress(0x9000_0000), size: 4096, type: .normal,
                   permissions: rw, borrowed: true, memory: &memory)
        #expect(s2.translate(GuestPhysicalAddress(0x4000_0000), memory: memory)?.borrowed == false)
        #expect(s2.translate(GuestPhysicalAddress(0x4000_1000), memory: memory)?.borrowed == true)
        #expect(s2.translate(GuestPhysicalAddress(0x4000_1000), memory: memory)?.permissions == rw)
    }

    @Test func aSinglePageUnmapsAndCanBeMappedAgainButBlocksNever() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        let page = GuestPhysicalAddress(0x3800_5000)
        try s2.map(page, to: HostPhysicalAddress(0x8000_1000), size: 4096, type: .normal, permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x8020_0000), size: 2 * MiB,
                   type: .normal, permissions: rwx, memory: &memory)
        #expect(s2.unmapPage(page, memory: &memory) == HostPhysicalAddress(0x8000_1000))
        #expect(s2.translate(page, memory: memory) == nil)
        #expect(s2.unmapPage(page, memory: &memory) == nil)
        // The 2 MiB block and unaligned or unmapped addresses are left alone.
        #expect(s2.unmapPage(GuestPhysicalAddress(0x4000_1000), memory: &memory) == nil)
        #expect(s2.translate(GuestPhysicalAddress(0x4000_1000), memory: memory)?.pa == HostPhysicalAddress(0x8020_1000))
        #expect(s2.unmapPage(GuestPhysicalAddress(0x3800_5008), memory: &memory) == nil)
        #expect(s2.unmapPage(GuestPhysicalAddress(0x1_0000_0000), memory: &memory) == nil)
        // The freed slot takes a new page.
        try s2.map(page, to: HostPhysicalAddress(0x8000_2000), size: 4096, type: .normal, permissions: [.read], memory: &memory)
        #expect(s2.translate(page, memory: memory)?.pa == HostPhysicalAddress(0x8000_2000))
    }

    @Test func translateFollowsBlocksAndPages() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x8_0000_0000), size: GiB,
                   type: .normal, permissions: rwx, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x0800_0000), to: HostPhysicalAddress(0x0800_0000), size: 0x1_0000,
                   type: .device, permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x9000_0000), to: HostPhysicalAddress(0x1234_5000), size: 4096,
                   type: .normal, permissions: [.read], memory: &memory)

        let ram = s2.translate(GuestPhysicalAddress(0x4123_4567), memory: memory)
        #expect(ram?.pa == HostPhysicalAddress(0x8_0123_4567))
        #expect(ram?.permissions == rwx)
        #expect(ram?.type == .normal)

        let mmio = s2.translate(GuestPhysicalAddress(0x0800_f004), memory: memory)
        #expect(mmio?.pa == HostPhysicalAddress(0x0800_f004))
        #expect(mmio?.type == .device)
        #expect(mmio?.permissions == rw)

        let page = s2.translate(GuestPhysicalAddress(0x9000_0abc), memory: memory)
        #expect(page?.pa == HostPhysicalAddress(0x1234_5abc))
        #expect(page?.permissions == [.read])

        #expect(s2.translate(GuestPhysicalAddress(0x0801_0000), memory: memory) == nil)  // just past MMIO
        #expect(s2.translate(GuestPhysicalAddress(0x9000_1000), memory: memory) == nil)  // next page
        #expect(s2.translate(GuestPhysicalAddress(0x3fff_ffff), memory: memory) == nil)  // below RAM, inside the MMIO tables
        #expect(s2.translate(GuestPhysicalAddress(1 << 39), memory: memory) == nil)  // beyond the IPA space
    }

    @Test func permissionsAreEncodedAndDeviceIsNeverExecutable() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        let cases: [(UInt64, Permissions, MemoryType, Permissions)] = [
            (0x1000, [.read], .normal, [.read]),
            (0x2000, [.write], .normal, [.write]),
            (0x3000, [.read, .execute], .normal, [.read, .execute]),
            (0x4000, rwx, .device, rw),
            (0x5000, [], .normal, []),
        ]
        for (ipa, asked, type, _) in cases {
            try s2.map(GuestPhysicalAddress(ipa), to: HostPhysicalAddress(ipa), size: 4096, type: type,
                       permissions: asked, memory: &memory)
        }
        for (ipa, _, type, got) in cases {
            let t = s2.translate(GuestPhysicalAddress(ipa), memory: memory)
            #expect(t?.permissions == got)
            #expect(t?.type == type)
        }
    }

    @Test func exactStage2Descriptors() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4020_0000), to: HostPhysicalAddress(0x4020_0000), size: 2 * MiB,
                   type: .normal, permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x0900_0000), to: HostPhysicalAddress(0x0900_0000), size: 4096,
                   type: .device, permissions: rw, memory: &memory)
        let l2 = memory.next(memory.load(s2.root, 1))
        // Block | MemAttr 0b1111 | S2AP RW | SH inner | AF | XN[54:53]=0b10
        #expect(memory.load(l2, 1) == 0x0040_0000_4020_07FD)
        // Table descriptors carry nothing but the next table's address and 0b11.
        let l2low = memory.load(s2.root, 0)
        #expect(l2low & ~0x0000_FFFF_FFFF_F000 == 0b11)
        let l3 = memory.next(memory.load(memory.next(l2low), 72))
        // Page | MemAttr 0b0001 | S2AP RW | SH 0 | AF | XN
        #expect(memory.load(l3, 0) == 0x0040_0000_0900_04C7)
    }

    @Test func exactHypervisorDescriptors() throws {
        var memory = FakeTableMemory()
        var el2 = try HypervisorTable(memory: &memory)
        try el2.identityMap(HostPhysicalAddress(0x4000_0000), size: 2 * MiB, type: .normal, writable: true,
                            executable: true, memory: &memory)
        try el2.identityMap(HostPhysicalAddress(0x4020_1000), size: 4096, type: .normal, writable: false,
                            executable: false, memory: &memory)
        try el2.identityMap(HostPhysicalAddress(0x0900_0000), size: 4096, type: .device, writable: true,
                            executable: true, memory: &memory)
        let l2 = memory.next(memory.load(el2.root, 1))
        // Block | AttrIndx 1 | AP[1] RES1 | SH inner | AF
        #expect(memory.load(l2, 0) == 0x0000_0000_4000_0745)
        // Page | AttrIndx 1 | AP read-only | SH inner | AF | XN
        let l3 = memory.next(memory.load(l2, 1))
        #expect(memory.load(l3, 1) == 0x0040_0000_4020_17C7)
        // Page | AttrIndx 0 | AP RW | AF | XN (device is never executable)
        let dev = memory.next(memory.load(memory.next(memory.load(el2.root, 0)), 72))
        #expect(memory.load(dev, 0) == 0x0040_0000_0900_0443)
        #expect(el2.translate(VirtualAddress(0x4020_1234), memory: memory) == HostPhysicalAddress(0x4020_1234))
        #expect(el2.translate(VirtualAddress(0x4010_0008), memory: memory) == HostPhysicalAddress(0x4010_0008))
        #expect(el2.translate(VirtualAddress(0x4020_2000), memory: memory) == nil)
    }

    @Test func mappingOverAMappingIsRefusedAndChangesNothing() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x4000_0000), size: 2 * MiB,
                   type: .normal, permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4040_0000), to: HostPhysicalAddress(0x4040_0000), size: 4096,
                   type: .normal, permissions: rw, memory: &memory)
        let before = memory.pages

        #expect(throws: PageTableError.alreadyMapped) {
            try s2.map(GuestPhysicalAddress(0x4000_0000), to: HostPhysicalAddress(0x5000_0000), size: 4096,
                       type: .normal, permissions: rw, memory: &memory)
        }
        // Starts in free space and runs into the block: nothing of the free prefix may be mapped.
        #expect(throws: PageTableError.alreadyMapped) {
            try s2.map(GuestPhysicalAddress(0x3ff0_0000), to: HostPhysicalAddress(0x5000_0000), size: 2 * MiB,
                       type: .normal, permissions: rw, memory: &memory)
        }
        // A 1 GiB block over a region holding a single page.
        #expect(throws: PageTableError.alreadyMapped) {
            try s2.map(GuestPhysicalAddress(GiB), to: HostPhysicalAddress(GiB), size: GiB,
                       type: .normal, permissions: rw, memory: &memory)
        }
        #expect(memory.pages == before)

        // Free neighbours inside an existing table are fine, and a block-sized free hole next to a page
        // still gets a block.
        try s2.map(GuestPhysicalAddress(0x4040_1000), to: HostPhysicalAddress(0x4040_1000), size: 4096,
                   type: .normal, permissions: rw, memory: &memory)
        try s2.map(GuestPhysicalAddress(0x4020_0000), to: HostPhysicalAddress(0x4020_0000), size: 2 * MiB,
                   type: .normal, permissions: rw, memory: &memory)
        let l2 = memory.next(memory.load(s2.root, 1))
        #expect(memory.load(l2, 1) & 0b11 == 0b01)
        #expect(memory.pages.count == before.count)
    }

    @Test func runningOutOfTablePages() throws {
        var memory = FakeTableMemory()
        memory.limit = 0
        #expect(throws: PageTableError.outOfMemory) { _ = try Stage2Table(memory: &memory) }
        memory.limit = 2
        var s2 = try Stage2Table(memory: &memory)
        // Needs a level-2 and a level-3 table: one too many.
        #expect(throws: PageTableError.outOfMemory) {
            try s2.map(GuestPhysicalAddress(0x1000), to: HostPhysicalAddress(0x1000), size: 4096,
                       type: .normal, permissions: rw, memory: &memory)
        }
        // A 2 MiB block needs only the level-2 table already allocated.
        try s2.map(GuestPhysicalAddress(0x20_0000), to: HostPhysicalAddress(0x20_0000), size: 2 * MiB,
                   type: .normal, permissions: rw, memory: &memory)
        #expect(s2.translate(GuestPhysicalAddress(0x20_0000), memory: memory) != nil)
    }

    @Test func misalignedAndOutOfRangeRequests() throws {
        var memory = FakeTableMemory()
        var s2 = try Stage2Table(memory: &memory)
        #expect(throws: PageTableError.misaligned) {
            try s2.map(GuestPhysicalAddress(0x1800), to: HostPhysicalAddress(0x1000), size: 4096,
                       type: .normal, permissions: rw, memory: &memory)
        }
        #expect(throws: PageTableError.misaligned) {
            try s2.map(GuestPhysicalAddress(0x1000), to: HostPhysicalAddress(0x1010), size: 4096,
                       type: .normal, permissions: rw, memory: &memory)
        }
        #expect(throws: PageTableError.misaligned) {
            try s2.map(GuestPhysicalAddress(0x1000), to: HostPhysicalAddress(0x1000), size: 100,
                       type: .normal, permissions: rw, memory: &memory)
        }
        #expect(throws: PageTableError.outOfRange) {
            try s2.map(GuestPhysicalAddress((1 << 39) - 4096), to: HostPhysicalAddress(0), size: 8192,
                       type: .normal, permissions: rw, memory: &memory)
        }
        #expect(throws: PageTableError.outOfRange) {
            try s2.map(GuestPhysicalAddress(0), to: HostPhysicalAddress(1 << 40), size: 4096,
                       type: .normal, permissions: rw, memory: &memory)
        }
        // The very top of both spaces is reachable.
        try s2.map(GuestPhysicalAddress((1 << 39) - GiB), to: HostPhysicalAddress((1 << 40) - GiB), size: GiB,
                   type: .normal, permissions: rw, memory: &memory)
        #expect(s2.translate(GuestPhysicalAddress((1 << 39) - 1), memory: memory)?.pa
            == HostPhysicalAddress((1 << 40) - 1))
        #expect(memory.pages.count == 1)
    }

    @Test func controlRegisterValues() {
        // T0SZ 25 | SL0 1 | IRGN0 WBWA | ORGN0 WBWA | SH0 inner | TG0 4K | PS 40 bits | RES1 31
        #expect(Stage2Table<FakeTableMemory>.vtcr == 0x8002_3559)
        // T0SZ 25 | IRGN0 WBWA | ORGN0 WBWA | SH0 inner | TG0 4K | PS 40 bits | RES1 31, 23
        #expect(HypervisorTable<FakeTableMemory>.tcr == 0x8082_3519)
        #expect(HypervisorTable<FakeTableMemory>.mair == 0xFF04)
    }
}

/// Table pages behind a reference, so a callback can look at them while a walk runs.
private struct SharedTableMemory: TableMemory {
    final class Storage {
        var pages: [UInt64: [UInt64]] = [:]
        var nextPage: UInt64 = 0x7_0000_0000
    }
    let storage = Storage()

    mutating func allocateTablePage() -> HostPhysicalAddress? {
        let page = storage.nextPage
        storage.nextPage += 4096
        storage.pages[page] = Array(repeating: 0, count: 512)
        return HostPhysicalAddress(page)
    }

    func load(_ table: HostPhysicalAddress, _ index: Int) -> UInt64 { storage.pages[table.raw]![index] }

    mutating func store(_ table: HostPhysicalAddress, _ index: Int, _ value: UInt64) {
        storage.pages[table.raw]![index] = value
    }
}
