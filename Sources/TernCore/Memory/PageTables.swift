// VMSAv8-64 translation tables with the 4 KiB granule, for the two regimes the hypervisor owns: stage 2
// (a domain's IPAs to host PAs) and its own EL2 stage 1 (an identity map). Both use the same three-level
// shape, so one walker builds both and only the leaf attribute bits differ.
//
// Both regimes use a 39-bit input space that starts at level 1, so the root is exactly one 4 KiB table of
// 512 x 1 GiB entries. (A 40-bit stage-2 input, T0SZ=24, would need two *concatenated* level-1 tables in
// an 8 KiB-aligned root, which a page-at-a-time provider cannot promise; 512 GiB of IPA is plenty.)
// Output addresses may use 40 bits, matching PS in VTCR_EL2 and TCR_EL2.
//
// Only `removePage` rewrites a valid entry (a block it splits into a table of the same mappings),
// and it follows the break-before-make rule through the caller's invalidation; everything else only
// fills invalid entries or invalidates one page. Barriers and TLB maintenance after mapping or
// unmapping are the caller's (architecture code's) business.

/// Where table pages live. The hypervisor backs this with real frames; host tests use a fake.
public protocol TableMemory {
    /// A zeroed, 4 KiB-aligned page, or nil when memory is exhausted.
    mutating func allocateTablePage() -> HostPhysicalAddress?
    func load(_ table: HostPhysicalAddress, _ index: Int) -> UInt64
    mutating func store(_ table: HostPhysicalAddress, _ index: Int, _ value: UInt64)
}

public enum MemoryType: Equatable, Sendable {
    case normal
    case device
}

public struct Permissions: OptionSet, Sendable {
    public let rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let read = Permissions(rawValue: 1 << 0)
    public static let write = Permissions(rawValue: 1 << 1)
    public static let execute = Permissions(rawValue: 1 << 2)
}

public enum PageTableError: Error, Equatable, Sendable {
    case outOfMemory
    /// An address or size is not a multiple of 4 KiB.
    case misaligned
    /// Part of the range is already mapped; the table is left unchanged.
    case alreadyMapped
    /// The input lies beyond the 39-bit input space or the output beyond 40 bits.
    case outOfRange
}

// MARK: - Descriptor bits shared by both regimes

private enum Descriptor {
    static let valid: UInt64 = 1 << 0
    /// At levels 1 and 2 this bit tells a table (1) from a block (0); at level 3 it must be 1 for a page.
    static let tableOrPage: UInt64 = 1 << 1
    static let outputAddress: UInt64 = 0x0000_FFFF_FFFF_F000  // bits [47:12]
    static let accessFlag: UInt64 = 1 << 10  // set up front: nothing here handles Access flag faults
    static let innerShareable: UInt64 = 0b11 << 8
    static let executeNever: UInt64 = 1 << 54  // stage 2 XN[1]; EL2 stage 1 XN
    /// Bit 55, one of the bits left for software: at stage 2, a page of another domain's (a grant or
    /// foreign mapping) rather than the domain's own.
    static let borrowed: UInt64 = 1 << 55
}

private enum Stage2Bits {
    // MemAttr[5:2] with FEAT_S2FWB off: outer [5:4], inner [3:2].
    static let normalWriteBack: UInt64 = 0b1111 << 2
    static let deviceNGnRE: UInt64 = 0b0001 << 2
    static let memAttrMask: UInt64 = 0b1111 << 2
    static let read: UInt64 = 1 << 6  // S2AP[0]
    static let write: UInt64 = 1 << 7  // S2AP[1]
}

private enum EL2Stage1Bits {
    static let deviceIndex: UInt64 = 0
    static let normalIndex: UInt64 = 1
    static let attrIndexShift: UInt64 = 2
    /// AP[1]: RES1 in the single-range EL2 regime (there is no EL0 to grant access to).
    static let apRES1: UInt64 = 1 << 6
    static let readOnly: UInt64 = 1 << 7  // AP[2]
}

// MARK: - The shared walker

/// Three levels (1, 2, 3) over a 39-bit input space; each entry at level n covers `1 << shift(n)` bytes.
private enum TranslationWalk {
    static let inputLimit: UInt64 = 1 << 39
    static let outputLimit: UInt64 = 1 << 40
    static let lastLevel = 3

    @inline(__always) static func shift(_ level: Int) -> UInt64 { UInt64(12 + 9 * (3 - level)) }

    @inline(__always) static func index(_ input: UInt64, _ level: Int) -> Int {
        Int(truncatingIfNeeded: (input >> shift(level)) & 511)
    }

    @inline(__always) static func isLeaf(_ descriptor: UInt64, _ level: Int) -> Bool {
        level == lastLevel || descriptor & Descriptor.tableOrPage == 0
    }

    static func validate(input: UInt64, output: UInt64, size: UInt64) throws(PageTableError) {
        guard (input | output | size) & (pageSize - 1) == 0 else { throw .misaligned }
        guard size <= inputLimit, input <= inputLimit - size, size <= outputLimit, output <= outputLimit - size
        else { throw .outOfRange }
    }

    /// Maps `[input, input + size)` to `output` with the largest blocks alignment allows. Checking the
    /// whole range first makes `alreadyMapped` leave the tables untouched; running out of memory part way
    /// can still leave a prefix mapped, which only matters to a caller that then carries on regardless.
    static func map<Memory: TableMemory>(
        root: HostPhysicalAddress, input: UInt64, output: UInt64, size: UInt64, leaf: UInt64,
        memory: inout Memory
    ) throws(PageTableError) {
        try validate(input: input, output: output, size: size)
        guard size > 0 else { return }
        try ensureUnmapped(table: root, level: 1, from: input, to: input + size, memory: memory)
        try fill(table: root, level: 1, from: input, to: input + size, output: output, leaf: leaf, memory: &memory)
    }

    /// Visits only tables that exist, so checking a range over empty space costs nothing per page.
    private static func ensureUnmapped<Memory: TableMemory>(
        table: HostPhysicalAddress, level: Int, from start: UInt64, to end: UInt64, memory: Memory
    ) throws(PageTableError) {
        let entrySize: UInt64 = 1 << shift(level)
        var input = start
        while input < end {
            let entryEnd = min(alignDown(input, entrySize) + entrySize, end)
            let descriptor = memory.load(table, index(input, level))
            if descriptor & Descriptor.valid != 0 {
                if isLeaf(descriptor, level) { throw .alreadyMapped }
                let next = HostPhysicalAddress(descriptor & Descriptor.outputAddress)
                try ensureUnmapped(table: next, level: level + 1, from: input, to: entryEnd, memory: memory)
            }
            input = entryEnd
        }
    }

    private static func fill<Memory: TableMemory>(
        table: HostPhysicalAddress, level: Int, from start: UInt64, to end: UInt64, output: UInt64,
        leaf: UInt64, memory: inout Memory
    ) throws(PageTableError) {
        let entrySize: UInt64 = 1 << shift(level)
        let offset = output &- start  // input and output move in lockstep
        var input = start
        while input < end {
            let entryEnd = min(alignDown(input, entrySize) + entrySize, end)
            let i = index(input, level)
            let descriptor = memory.load(table, i)
            let whole = input & (entrySize - 1) == 0 && (input &+ offset) & (entrySize - 1) == 0
                && entryEnd - input == entrySize
            if descriptor & Descriptor.valid == 0 && (whole || level == lastLevel) {
                let type = level == lastLevel ? Descriptor.valid | Descriptor.tableOrPage : Descriptor.valid
                memory.store(table, i, (input &+ offset) | leaf | type)
            } else {
                // A table already here (holding mappings elsewhere in this entry) is shared, not replaced.
                let next: HostPhysicalAddress
                if descriptor & Descriptor.valid != 0 {
                    guard !isLeaf(descriptor, level) else { throw .alreadyMapped }
                    next = HostPhysicalAddress(descriptor & Descriptor.outputAddress)
                } else {
                    guard let page = memory.allocateTablePage() else { throw .outOfMemory }
                    memory.store(table, i, page.raw | Descriptor.valid | Descriptor.tableOrPage)
                    next = page
                }
                try fill(table: next, level: level + 1, from: input, to: entryEnd, output: input &+ offset,
                         leaf: leaf, memory: &memory)
            }
            input = entryEnd
        }
    }

    /// Invalidates the level-3 page entry for `input` and returns what it mapped; nil (and nothing
    /// changes) when `input` is unmapped. A page inside a block: with `split`, the block becomes a
    /// table of the same mappings one level down (to level 3), the old entry invalidated and
    /// `invalidate` called with the block's input address before the table takes its place
    /// (break-before-make); without, nil (a block is not unmapped piecemeal).
    static func unmapPage<Memory: TableMemory>(
        root: HostPhysicalAddress, input: UInt64, memory: inout Memory, split: Bool, invalidate: (UInt64) -> Void
    ) -> UInt64? {
        guard input < inputLimit, input & 0xFFF == 0 else { return nil }
        var table = root
        for level in 1 ... lastLevel {
            let i = index(input, level)
            var descriptor = memory.load(table, i)
            guard descriptor & Descriptor.valid != 0 else { return nil }
            if level == lastLevel {
                memory.store(table, i, 0)
                return descriptor & Descriptor.outputAddress
            }
            if isLeaf(descriptor, level) {
                guard split, let page = memory.allocateTablePage() else { return nil }
                let childSize: UInt64 = 1 << shift(level + 1)
                let output = descriptor & Descriptor.outputAddress
                let attributes = descriptor & ~Descriptor.outputAddress & ~(Descriptor.valid | Descriptor.tableOrPage)
                let type = level + 1 == lastLevel ? Descriptor.valid | Descriptor.tableOrPage : Descriptor.valid
                for j in 0 ..< 512 { memory.store(page, j, (output + UInt64(j) * childSize) | attributes | type) }
                memory.store(table, i, 0)
                invalidate(alignDown(input, 1 << shift(level)))
                descriptor = page.raw | Descriptor.valid | Descriptor.tableOrPage
                memory.store(table, i, descriptor)
            }
            table = HostPhysicalAddress(descriptor & Descriptor.outputAddress)
        }
        return nil
    }

    /// The leaf descriptor covering `input` and the output address it yields, or nil if unmapped.
    static func lookup<Memory: TableMemory>(
        root: HostPhysicalAddress, input: UInt64, memory: Memory
    ) -> (descriptor: UInt64, output: UInt64)? {
        guard input < inputLimit else { return nil }
        var table = root
        var level = 1
        while true {
            let descriptor = memory.load(table, index(input, level))
            guard descriptor & Descriptor.valid != 0 else { return nil }
            if isLeaf(descriptor, level) {
                let entryMask: UInt64 = (1 << shift(level)) - 1
                return (descriptor, (descriptor & Descriptor.outputAddress & ~entryMask) | (input & entryMask))
            }
            table = HostPhysicalAddress(descriptor & Descriptor.outputAddress)
            level += 1
        }
    }
}

// MARK: - Stage 2

/// A domain's stage-2 tables: what its IPAs mean in host physical memory, and what it may do there.
public struct Stage2Table<Memory: TableMemory> {
    /// The level-1 table, for VTTBR_EL2.BADDR.
    public let root: HostPhysicalAddress

    public init(memory: inout Memory) throws(PageTableError) {
        guard let page = memory.allocateTablePage() else { throw .outOfMemory }
        root = page
    }

    /// Device memory is never executable: speculative instruction fetch from MMIO can have side effects.
    /// `borrowed`: the page is another domain's (translate says so), never counted as the domain's own.
    public mutating func map(
        _ ipa: GuestPhysicalAddress, to pa: HostPhysicalAddress, size: UInt64, type: MemoryType,
        permissions: Permissions, borrowed: Bool = false, memory: inout Memory
    ) throws(PageTableError) {
        var leaf = Descriptor.accessFlag | (borrowed ? Descriptor.borrowed : 0)
        switch type {
        case .normal: leaf |= Stage2Bits.normalWriteBack | Descriptor.innerShareable
        case .device: leaf |= Stage2Bits.deviceNGnRE
        }
        if permissions.contains(.read) { leaf |= Stage2Bits.read }
        if permissions.contains(.write) { leaf |= Stage2Bits.write }
        if type == .device || !permissions.contains(.execute) { leaf |= Descriptor.executeNever }
        try TranslationWalk.map(root: root, input: ipa.raw, output: pa.raw, size: size, leaf: leaf, memory: &memory)
    }

    /// Removes the single 4 KiB page mapped at `ipa`, returning the host page it was; nil when there is
    /// no such page (nothing mapped there, or part of a larger block). The caller invalidates the TLBs.
    public mutating func unmapPage(_ ipa: GuestPhysicalAddress, memory: inout Memory) -> HostPhysicalAddress? {
        TranslationWalk.unmapPage(root: root, input: ipa.raw, memory: &memory, split: false) { _ in }.map { HostPhysicalAddress($0) }
    }

    /// Removes the 4 KiB page at `ipa` wherever it is mapped, splitting a block that covers it (a
    /// domain giving back one page of RAM mapped in large blocks). `invalidate` gets the input address
    /// of each block split, after its entry is invalidated and before the table replaces it: the
    /// caller removes it from every TLB there. Nil when nothing is mapped at `ipa` (or no table page).
    public mutating func removePage(_ ipa: GuestPhysicalAddress, memory: inout Memory,
                                    invalidate: (GuestPhysicalAddress) -> Void) -> HostPhysicalAddress? {
        TranslationWalk.unmapPage(root: root, input: ipa.raw, memory: &memory, split: true) { invalidate(GuestPhysicalAddress($0)) }
            .map { HostPhysicalAddress($0) }
    }

    public func translate(
        _ ipa: GuestPhysicalAddress, memory: Memory
    ) -> (pa: HostPhysicalAddress, permissions: Permissions, type: MemoryType, borrowed: Bool)? {
        guard let found = TranslationWalk.lookup(root: root, input: ipa.raw, memory: memory) else { return nil }
        let descriptor = found.descriptor
        var permissions: Permissions = []
        if descriptor & Stage2Bits.read != 0 { permissions.insert(.read) }
        if descriptor & Stage2Bits.write != 0 { permissions.insert(.write) }
        if descriptor & Descriptor.executeNever == 0 { permissions.insert(.execute) }
        let type: MemoryType =
            descriptor & Stage2Bits.memAttrMask == Stage2Bits.normalWriteBack ? .normal : .device
        return (HostPhysicalAddress(found.output), permissions, type, descriptor & Descriptor.borrowed != 0)
    }

    /// VTCR_EL2 for this layout: T0SZ=25 (39-bit IPA), SL0=1 (start at level 1), walks cached write-back
    /// write-allocate and inner shareable, TG0=4 KiB, PS=40 bits, and RES1 bit 31.
    public static var vtcr: UInt64 {
        let t0sz: UInt64 = 25
        let startLevel1: UInt64 = 0b01 << 6
        let innerWBWA: UInt64 = 0b01 << 8
        let outerWBWA: UInt64 = 0b01 << 10
        let innerShareable: UInt64 = 0b11 << 12
        let granule4K: UInt64 = 0b00 << 14
        let physical40Bits: UInt64 = 0b010 << 16
        let res1: UInt64 = 1 << 31
        return t0sz | startLevel1 | innerWBWA | outerWBWA | innerShareable | granule4K | physical40Bits | res1
    }
}

// MARK: - EL2 stage 1

/// The hypervisor's own tables (TTBR0_EL2), mapping physical memory at its own address.
public struct HypervisorTable<Memory: TableMemory> {
    public let root: HostPhysicalAddress

    public init(memory: inout Memory) throws(PageTableError) {
        guard let page = memory.allocateTablePage() else { throw .outOfMemory }
        root = page
    }

    /// Device memory is never executable, whatever `executable` says.
    public mutating func identityMap(
        _ base: HostPhysicalAddress, size: UInt64, type: MemoryType, writable: Bool, executable: Bool,
        memory: inout Memory
    ) throws(PageTableError) {
        var leaf = Descriptor.accessFlag | EL2Stage1Bits.apRES1
        switch type {
        case .normal:
            leaf |= EL2Stage1Bits.normalIndex << EL2Stage1Bits.attrIndexShift | Descriptor.innerShareable
        case .device:
            leaf |= EL2Stage1Bits.deviceIndex << EL2Stage1Bits.attrIndexShift
        }
        if !writable { leaf |= EL2Stage1Bits.readOnly }
        if type == .device || !executable { leaf |= Descriptor.executeNever }
        try TranslationWalk.map(root: root, input: base.raw, output: base.raw, size: size, leaf: leaf,
                                memory: &memory)
    }

    public func translate(_ va: VirtualAddress, memory: Memory) -> HostPhysicalAddress? {
        TranslationWalk.lookup(root: root, input: va.raw, memory: memory).map { HostPhysicalAddress($0.output) }
    }

    /// MAIR_EL2: the AttrIndx values used above. Index 0 Device-nGnRE, index 1 Normal write-back
    /// read/write-allocate, inner and outer.
    public static var mair: UInt64 {
        let deviceNGnRE: UInt64 = 0x04
        let normalWriteBack: UInt64 = 0xFF
        return deviceNGnRE << (8 * EL2Stage1Bits.deviceIndex) | normalWriteBack << (8 * EL2Stage1Bits.normalIndex)
    }

    /// TCR_EL2 (without VHE) for this layout: T0SZ=25 (39-bit VA, so the walk starts at level 1), walks
    /// cached write-back write-allocate and inner shareable, TG0=4 KiB, PS=40 bits, RES1 bits 31 and 23.
    public static var tcr: UInt64 {
        let t0sz: UInt64 = 25
        let innerWBWA: UInt64 = 0b01 << 8
        let outerWBWA: UInt64 = 0b01 << 10
        let innerShareable: UInt64 = 0b11 << 12
        let granule4K: UInt64 = 0b00 << 14
        let physical40Bits: UInt64 = 0b010 << 16
        let res1: UInt64 = 1 << 31 | 1 << 23
        return t0sz | innerWBWA | outerWBWA | innerShareable | granule4K | physical40Bits | res1
    }
}
