// Reading and writing a guest's memory on its behalf. Every guest pointer is a guest *virtual* address:
// the hardware walks the guest's own stage-1 tables and then its stage 2 (AT S12E1R/W), so permissions
// are the guest's and the domain's both, and nothing outside the domain is reachable.
import TernArchAsm
import TernCore

enum GuestMemory {
    /// The host physical address behind a guest virtual address of the running vCPU, or nil.
    @inline(__always) static func translate(_ va: VirtualAddress, write: Bool) -> HostPhysicalAddress? {
        let par = tern_at_s12e1(va.raw, write ? 1 : 0)
        if par & 1 != 0 { return nil }
        return HostPhysicalAddress(par & 0x000F_FFFF_FFFF_F000 | va.raw & 0xFFF)
    }

    /// Copies `count` bytes from the guest; false (copying stops) at the first unmapped page.
    static func copy(from va: VirtualAddress, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        pages(va, count: count, write: false) { pa, done, chunk in
            tern_copy(UInt64(UInt(bitPattern: buffer + done)), pa.raw, UInt64(chunk))
        }
    }

    /// A whole structure the guest passed by pointer; false if any of it is unmapped.
    static func read<T>(_ value: inout T, from va: VirtualAddress) -> Bool {
        var memory = RunningGuestMemory()
        return memory.read(&value, from: va)
    }

    /// A whole value into the guest at `va`, sized by its type; false if any of it is unmapped.
    static func write<T>(_ value: T, to va: VirtualAddress) -> Bool {
        var memory = RunningGuestMemory()
        return memory.write(value, to: va)
    }

    static func copy(to va: VirtualAddress, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        pages(va, count: count, write: true) { pa, done, chunk in
            tern_copy(pa.raw, UInt64(UInt(bitPattern: buffer + done)), UInt64(chunk))
        }
    }

    /// Walks a guest buffer page by page, translating each piece; false at the first unmapped page.
    private static func pages(_ va: VirtualAddress, count: Int, write: Bool,
                              _ body: (HostPhysicalAddress, Int, Int) -> Void) -> Bool {
        var done = 0
        while done < count {
            let at = va + UInt64(done)
            guard let pa = translate(at, write: write) else { return false }
            let chunk = min(count - done, Int(pageSize - at.raw & 0xFFF))
            body(pa, done, chunk)
            done += chunk
        }
        return true
    }

    static func load32(_ va: VirtualAddress) -> UInt32? {
        guard va.raw & 3 == 0, let pa = translate(va, write: false) else { return nil }
        return tern_load32(pa.raw)
    }

    static func store32(_ va: VirtualAddress, _ value: UInt32) -> Bool {
        guard va.raw & 3 == 0, let pa = translate(va, write: true) else { return false }
        tern_store32(pa.raw, value)
        return true
    }
}

/// The running vCPU's memory behind TernCore's seam: the Xen interfaces' logic reaches guests through it.
struct RunningGuestMemory: GuestMemoryAccess {
    func copy(from va: VirtualAddress, count: Int, into buffer: UnsafeMutableRawPointer) -> Bool {
        GuestMemory.copy(from: va, count: count, into: buffer)
    }

    func copy(to va: VirtualAddress, from buffer: UnsafeRawPointer, count: Int) -> Bool {
        GuestMemory.copy(to: va, from: buffer, count: count)
    }

    func load32(_ va: VirtualAddress) -> UInt32? { GuestMemory.load32(va) }

    func store32(_ va: VirtualAddress, _ value: UInt32) -> Bool { GuestMemory.store32(va, value) }
}
