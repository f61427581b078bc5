// The seam under the Xen interfaces: how their logic reaches a guest's memory. In the hypervisor the
// guest's pointers are guest virtual addresses walked by the hardware (AT S12E1R/W through the guest's
// stage 1 and its stage 2); in host tests a fake with pages that are mapped, read-only or missing
// stands in, so the interfaces' logic, hostile pointers included, is tested with `swift test`.

public protocol GuestMemoryAccess {
    /// Copies `count` bytes from the guest; false (copying stops) at the first page with nothing behind it.
    mutating func copy(from va: VirtualAddress, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool
    /// Copies `count` bytes into the guest; false at the first page it may not write.
    mutating func copy(to va: VirtualAddress, from buffer: UnsafeRawPointer, count: Int) -> Bool
    /// An aligned 32-bit word from the guest; nil when misaligned or unmapped.
    mutating func load32(_ va: VirtualAddress) -> UInt32?
    /// An aligned 32-bit word into the guest; false when misaligned or unmapped.
    mutating func store32(_ va: VirtualAddress, _ value: UInt32) -> Bool
}

extension GuestMemoryAccess {
    /// A whole structure the guest passed by pointer; false if any of it is unmapped.
    public mutating func read<T>(_ value: inout T, from va: VirtualAddress) -> Bool {
        withUnsafeMutableBytes(of: &value) { copy(from: va, count: $0.count, into: $0.baseAddress!) }
    }

    /// A whole value into the guest at `va`, sized by its type; false if any of it is unmapped.
    public mutating func write<T>(_ value: T, to va: VirtualAddress) -> Bool {
        withUnsafeBytes(of: value) { copy(to: va, from: $0.baseAddress!, count: $0.count) }
    }

    public mutating func load32(_ va: VirtualAddress) -> UInt32? {
        guard va.raw & 3 == 0 else { return nil }
        var value: UInt32 = 0
        return read(&value, from: va) ? value : nil
    }

    public mutating func store32(_ va: VirtualAddress, _ value: UInt32) -> Bool {
        va.raw & 3 == 0 && write(value, to: va)
    }

    /// Fills the guest's fixed-size char array at `va` (`size` bytes) with `text` and NULs after it, as
    /// Xen returns its strings (cut short to keep the final NUL). False when any of it is unmapped.
    public mutating func writeText(_ text: StaticString, size: Int, to va: VirtualAddress) -> Bool {
        writeText(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount), size: size, to: va)
    }

    mutating func writeText(_ text: UnsafeRawBufferPointer, size: Int, to va: VirtualAddress) -> Bool {
        let n = min(text.count, size - 1)
        if n > 0 { guard copy(to: va, from: text.baseAddress!, count: n) else { return false } }
        var zeros: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        var done = n
        while done < size {
            let chunk = min(MemoryLayout.size(ofValue: zeros), size - done)
            guard withUnsafeBytes(of: &zeros, { copy(to: va + UInt64(done), from: $0.baseAddress!, count: chunk) }) else {
                return false
            }
            done += chunk
        }
        return true
    }
}
