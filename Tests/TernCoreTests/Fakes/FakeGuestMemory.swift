@testable import TernCore

/// A guest's memory for host tests of the Xen interfaces: 4 KiB pages at chosen guest virtual
/// addresses, writable or read-only; anything else has nothing behind it, as a bad guest pointer.
/// Its aligned words are the protocol's defaults (the image's own go straight to the page walk).
struct FakeGuestMemory: GuestMemoryAccess {
    private(set) var pages: [UInt64: [UInt8]] = [:]
    private var readOnly: Set<UInt64> = []

    /// Maps a zeroed page at `va` (page aligned).
    mutating func map(_ va: UInt64, writable: Bool = true) {
        pages[va] = [UInt8](repeating: 0, count: 4096)
        if !writable { readOnly.insert(va) }
    }

    func bytes(at va: UInt64, count: Int) -> [UInt8] {
        (0 ..< count).map { i in pages[(va + UInt64(i)) & ~0xFFF]![Int((va + UInt64(i)) & 0xFFF)] }
    }

    func word64(at va: UInt64) -> UInt64 {
        bytes(at: va, count: 8).enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
    }

    mutating func copy(from va: VirtualAddress, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        for i in 0 ..< count {
            let a = va.raw &+ UInt64(i)
            guard let page = pages[a & ~0xFFF] else { return false }
            buffer.storeBytes(of: page[Int(a & 0xFFF)], toByteOffset: i, as: UInt8.self)
        }
        return true
    }

    mutating func copy(to va: VirtualAddress, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        for i in 0 ..< count {
            let a = va.raw &+ UInt64(i)
            guard pages[a & ~0xFFF] != nil, !readOnly.contains(a & ~0xFFF) else { return false }
            pages[a & ~0xFFF]![Int(a & 0xFFF)] = buffer.load(fromByteOffset: i, as: UInt8.self)
        }
        return true
    }

    /// Fills `count` bytes at `va` with `byte`, so a test sees what an answer overwrote and what not.
    mutating func fill(_ va: UInt64, count: Int, with byte: UInt8 = 0xEE) {
        for i in 0 ..< count { _ = write(byte, to: VirtualAddress(va + UInt64(i))) }
    }
}
