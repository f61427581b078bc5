// How many stage-2 table pages a domain may have: Xen's P2M pool on Arm (its paging mempool). Without
// one, a guest that maps granted pages at addresses far apart makes the hypervisor build a table page
// for each, as many as its maptrack has handles (a gigabyte for 262,144). The control domain takes what
// it needs (Xen's hardware domain does); any other domain's tables come out of a pool its toolstack
// sizes (XEN_DOMCTL_set_paging_mempool_size, libxl from xl's shadow_memory) or, for a domain the boot
// configuration starts, Xen's dom0less default. Tern draws the pages from the frame allocator as the
// tables grow instead of setting them aside, so the pool is a count.

public struct TablePool: Equatable, Sendable {
    /// The pool's size in pages: what get_paging_mempool_size says.
    public private(set) var pages: Int
    /// False for the control domain, whose tables take what they need.
    public private(set) var bounded: Bool
    /// Table pages the domain's stage 2 has.
    public private(set) var used = 0

    /// The pool of a domain being built: no bound until `bound(to:)`, so its RAM's tables are made first.
    public init() {
        pages = 0
        bounded = false
    }

    /// A page for the tables, if the pool has one left.
    public mutating func take() -> Bool {
        guard !bounded || used < pages else { return false }
        used += 1
        return true
    }

    /// Gives back a page `take` counted that the tables did not get after all.
    public mutating func giveBack() { used -= 1 }

    /// Bounds the tables to `pages`, or to what they already hold if that is more.
    public mutating func bound(to pages: Int) {
        bounded = true
        self.pages = max(pages, used)
    }

    /// set_paging_mempool_size: as Xen's p2m_set_allocation, a pool cannot shrink below the pages the
    /// tables hold (-ENOMEM, left at that many). The control domain's stays unbounded.
    public mutating func resize(to pages: UInt64) -> XenError? {
        guard bounded else {
            self.pages = Int(clamping: pages)
            return nil
        }
        guard pages >= UInt64(used) else {
            self.pages = used
            return .ENOMEM
        }
        self.pages = Int(pages)
        return nil
    }

    /// What Xen's p2m_init gives every domain before anyone sizes its pool (Xen's root table is not
    /// counted in it; Tern's is, one page fewer).
    public static let initialPages = 16

    /// Xen 4.17's domain_p2m_pages, which libxl's default matches: 1 MiB a vCPU, a page a MiB of RAM
    /// and 128 pages for the extended regions, rounded up to whole MiB.
    public static func defaultPages(memoryBytes: UInt64, vcpus: Int) -> Int {
        let kilobytes = 4 * (256 * vcpus + Int(memoryBytes >> 20) + 128)
        return ((kilobytes + 1023) / 1024) << 8
    }
}
