// Host physical memory: the frame allocator that owns it, and page-table pages drawn from it. The
// hypervisor runs with an identity map, so a physical address is also the address it dereferences.
import BareMetalSupport
import TernArchAsm
import TernCore

nonisolated(unsafe) var frames = FrameAllocator()
nonisolated(unsafe) var framesLock: UInt32 = 0

func allocateFrames(pages: Int, alignment: UInt64 = pageSize) -> HostPhysicalAddress? {
    withSpinLock(&framesLock) { frames.allocate(pages: pages, alignment: alignment) }
}

/// Returns frames scrubbed, so no domain ever sees what another left behind.
func freeFrames(_ base: HostPhysicalAddress, pages: Int) {
    tern_zero(base.raw, UInt64(pages) * pageSize)
    freeScrubbedFrames(base, pages: pages)
}

/// Returns frames the caller has already scrubbed.
func freeScrubbedFrames(_ base: HostPhysicalAddress, pages: Int) {
    withSpinLock(&framesLock) { frames.free(base, pages: pages) }
}

/// Table pages for stage-2 and the hypervisor's own tables, remembered so a domain's can be freed.
struct PhysicalTableMemory: TableMemory {
    var pages: [HostPhysicalAddress] = []

    mutating func allocateTablePage() -> HostPhysicalAddress? {
        guard let page = allocateFrames(pages: 1) else { return nil }
        tern_zero(page.raw, pageSize)
        pages.append(page)
        return page
    }

    func load(_ table: HostPhysicalAddress, _ index: Int) -> UInt64 {
        tern_load64(table.raw + UInt64(index) * 8)
    }

    mutating func store(_ table: HostPhysicalAddress, _ index: Int, _ value: UInt64) {
        tern_store64(table.raw + UInt64(index) * 8, value)
    }

    mutating func releaseAll() {
        for page in pages { freeFrames(page, pages: 1) }
        pages.removeAll()
    }
}
