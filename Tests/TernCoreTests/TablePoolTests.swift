import Testing
import TernCore

struct TablePoolTests {
    /// Xen 4.17's domain_p2m_pages: 4 KiB x (256 a vCPU + 1 a MiB of RAM + 128), in whole MiB.
    @Test func theDefaultIsXensDom0lessPool() {
        #expect(TablePool.defaultPages(memoryBytes: 0, vcpus: 1) == 512)                // 1.5 MiB -> 2 MiB
        #expect(TablePool.defaultPages(memoryBytes: 128 << 20, vcpus: 1) == 512)        // 2 MiB exactly
        #expect(TablePool.defaultPages(memoryBytes: 132 << 20, vcpus: 1) == 768)        // a page over: 3 MiB
        #expect(TablePool.defaultPages(memoryBytes: 64 << 20, vcpus: 4) == 1280)        // 4.75 MiB -> 5 MiB
    }

    /// The tables made while the domain is built count, and a bound below them is raised to them.
    @Test func aBoundedPoolGivesItsPagesAndNoMore() {
        var pool = TablePool()
        for _ in 0 ..< 5 { #expect(pool.take() == true) }
        pool.bound(to: 3)
        #expect(pool.pages == 5 && pool.used == 5 && !pool.take())
        pool.bound(to: 7)
        #expect(pool.take() && pool.take() && !pool.take() && pool.used == 7)
    }

    /// set_paging_mempool_size grows the pool, or shrinks it as far as the tables allow (-ENOMEM past
    /// that, the pool left at what they hold).
    @Test func resizingCannotTakeAwayPagesInUse() {
        var pool = TablePool()
        pool.bound(to: 4)
        for _ in 0 ..< 3 { #expect(pool.take() == true) }
        #expect(pool.resize(to: 10) == nil && pool.pages == 10)
        #expect(pool.resize(to: 2) == .ENOMEM && pool.pages == 3 && !pool.take())
        #expect(pool.resize(to: 3) == nil && pool.resize(to: 4) == nil && pool.take() && !pool.take())
    }

    /// The control domain's tables take what they need; its pool's size is only what it was told.
    @Test func theControlDomainsPoolHasNoBound() {
        var pool = TablePool()
        for _ in 0 ..< 10_000 { #expect(pool.take() == true) }
        #expect(pool.resize(to: 2) == nil && pool.pages == 2 && pool.take() && pool.used == 10_001)
        #expect(pool.resize(to: .max) == nil && pool.pages == .max)
    }
}
