// The hypervisor owns all of physical memory and hands it out to domains and to its own page tables in
// 4 KiB frames. Free memory is kept as a sorted list of disjoint, non-adjacent ranges rather than a
// bitmap: the machine has a handful of RAM banks, so the list stays short, needs no memory of its own
// before the allocator exists, and makes contiguous (and aligned) allocations a single scan.

/// A span of host physical memory, `[base, end)`.
public struct PhysicalRange: Equatable, Sendable {
    public var base: HostPhysicalAddress
    public var size: UInt64

    /// One past the last byte. Derived from `size` so the two can never disagree.
    public var end: HostPhysicalAddress {
        get { base + size }
        set { size = newValue.raw &- base.raw }
    }

    @inlinable public init(base: HostPhysicalAddress, size: UInt64) {
        self.base = base
        self.size = size
    }

    @inlinable public init(base: HostPhysicalAddress, end: HostPhysicalAddress) {
        self.base = base
        self.size = end.raw &- base.raw
    }

    /// Whether all of `[address, address + length)` lies inside the range (without overflowing).
    public func contains(_ address: HostPhysicalAddress, length: UInt64 = 1) -> Bool {
        address.raw >= base.raw && length <= size && address.raw - base.raw <= size - length
    }
}

public struct FrameAllocator {
    // Invariant: sorted by base, page-aligned, non-empty, and no two ranges touch (touching ones are
    // merged), so "the lowest fit" is simply the first fit.
    private var freeList: [PhysicalRange] = []
    private var freeBytes: UInt64 = 0

    public init() {}

    public var freePages: Int { Int(freeBytes / pageSize) }

    public var ranges: [PhysicalRange] { freeList }

    /// Firmware describes RAM to the byte; only whole frames inside it are usable, so the range is
    /// shrunk inward. Overlap with memory already free is tolerated (memory nodes may repeat a bank).
    public mutating func addFree(_ r: PhysicalRange) {
        let base = alignUp(r.base.raw, pageSize)
        let end = alignDown(r.end.raw, pageSize)
        guard base < end else { return }
        insert(base: base, end: end)
    }

    /// A reservation that covers part of a frame makes the whole frame unusable, so the range is grown
    /// outward: handing out the rest of that frame would let a guest see the image, DTB or module.
    public mutating func reserve(_ r: PhysicalRange) {
        let base = alignDown(r.base.raw, pageSize)
        let end = alignUp(r.end.raw, pageSize)
        guard base < end else { return }
        remove(base: base, end: end)
    }

    /// The lowest `pages` contiguous frames starting on a multiple of `alignment`, which must be a power
    /// of two (values below a page mean a page). Lowest-first keeps high memory in large unbroken pieces for domains.
    public mutating func allocate(pages: Int, alignment: UInt64 = pageSize) -> HostPhysicalAddress? {
        guard pages > 0 else { return nil }
        precondition(alignment & (alignment &- 1) == 0)
        let align = max(alignment, pageSize)
        let (bytes, overflow) = UInt64(pages).multipliedReportingOverflow(by: pageSize)
        guard !overflow else { return nil }
        for r in freeList {
            let start = alignUp(r.base.raw, align)
            // alignUp wraps to 0 past the top of the address space; that candidate is not a fit.
            guard start >= r.base.raw, start < r.end.raw, r.end.raw - start >= bytes else { continue }
            remove(base: start, end: start + bytes)
            return HostPhysicalAddress(start)
        }
        return nil
    }

    /// Frames come back exactly as they were handed out. Freeing a frame that is already free means two
    /// owners believed they held it, which is a memory-safety bug worth stopping for.
    public mutating func free(_ base: HostPhysicalAddress, pages: Int) {
        guard pages > 0 else { return }
        precondition(base.pageOffset == 0)
        let start = base.raw
        let end = start + UInt64(pages) * pageSize
        let i = firstIndex(endingAfter: start)
        precondition(i == freeList.count || freeList[i].base.raw >= end)
        insert(base: start, end: end)
    }

    // MARK: - Range list maintenance

    /// Index of the first range whose end lies beyond `address` (binary search; the list is sorted and
    /// disjoint, so ends are sorted too).
    private func firstIndex(endingAfter address: UInt64) -> Int {
        var low = 0
        var high = freeList.count
        while low < high {
            let mid = (low + high) / 2
            if freeList[mid].end.raw > address { high = mid } else { low = mid + 1 }
        }
        return low
    }

    /// Unions `[base, end)` into the list, absorbing every range it overlaps or touches.
    private mutating func insert(base: UInt64, end: UInt64) {
        // Start one earlier than the first overlap so a range ending exactly at `base` is absorbed.
        var first = firstIndex(endingAfter: base)
        if first > 0 && freeList[first - 1].end.raw == base { first -= 1 }
        var last = first
        var newBase = base
        var newEnd = end
        var absorbed: UInt64 = 0
        while last < freeList.count && freeList[last].base.raw <= end {
            newBase = min(newBase, freeList[last].base.raw)
            newEnd = max(newEnd, freeList[last].end.raw)
            absorbed += freeList[last].size
            last += 1
        }
        let merged = PhysicalRange(base: HostPhysicalAddress(newBase), end: HostPhysicalAddress(newEnd))
        freeList.replaceSubrange(first..<last, with: CollectionOfOne(merged))
        freeBytes = freeBytes - absorbed + merged.size
    }

    /// Subtracts `[base, end)` from the list, trimming or splitting the ranges it touches.
    private mutating func remove(base: UInt64, end: UInt64) {
        var i = firstIndex(endingAfter: base)
        while i < freeList.count && freeList[i].base.raw < end {
            let r = freeList[i]
            let keepLow = r.base.raw < base
            let keepHigh = r.end.raw > end
            if keepLow && keepHigh {
                freeList[i].end = HostPhysicalAddress(base)
                freeList.insert(PhysicalRange(base: HostPhysicalAddress(end), end: r.end), at: i + 1)
                freeBytes -= end - base
                return
            } else if keepLow {
                freeList[i].end = HostPhysicalAddress(base)
                freeBytes -= r.end.raw - base
                i += 1
            } else if keepHigh {
                freeList[i].base = HostPhysicalAddress(end)
                freeList[i].size = r.end.raw - end
                freeBytes -= end - r.base.raw
                return
            } else {
                freeList.remove(at: i)
                freeBytes -= r.size
            }
        }
    }
}
