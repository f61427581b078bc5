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

/// What building one domain may take from the heap at most (its tables, device tree and objects), and
/// what the heap grows by from RAM when it has less than that left: a machine with few domains keeps
/// only the linker's region, one with many gets room as it builds them.
let heapPerDomain: UInt64 = 1 << 20
private let heapGrowth = 4 << 20

nonisolated(unsafe) private var heapRegionsExhausted = false

/// Makes sure one of the heap's regions has an untouched tail of `bytes` (at most a region's worth),
/// adding a region of RAM if none has. Called before a domain is built (at boot, on restart, by the
/// toolstack) with what building one takes, and before a table grows by a few large blocks; never from
/// inside an allocation.
func ensureHeapHeadroom(_ bytes: UInt64 = heapPerDomain) {
    guard bm_heap_headroom() < bytes,
          let region = allocateFrames(pages: heapGrowth / Int(pageSize)) else { return }
    if bm_heap_add(region.raw, UInt64(heapGrowth)) == 0 {
        freeScrubbedFrames(region, pages: heapGrowth / Int(pageSize))
        if !heapRegionsExhausted { log("the hypervisor heap has no room for another region") }
        heapRegionsExhausted = true
    }
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

/// Table pages for stage-2 and the hypervisor's own tables, remembered so a domain's can be freed, and
/// as many as its pool allows.
struct PhysicalTableMemory: TableMemory {
    var pages: [HostPhysicalAddress] = []
    var pool = TablePool()

    mutating func allocateTablePage() -> HostPhysicalAddress? {
        guard pool.take() else { return nil }
        guard let page = allocateFrames(pages: 1) else {
            pool.giveBack()
            return nil
        }
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
        for page in pages {
            freeFrames(page, pages: 1)
            pool.giveBack()
        }
        pages.removeAll()
    }
}
