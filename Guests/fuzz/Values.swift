// The fuzzer's randomness: TernCore's SplitMix64 from the seed, so one seed on one vCPU gives the same
// operations every time, and the values Tern's checks are made of: page boundaries, the end of RAM,
// device and grant-window addresses, all-ones, domain IDs near the reserved ones, counts just past a
// limit.
import GuestKit
import GuestKitAsm
import TernCore

/// The memory the fuzzer offers to the hypervisor: a scratch area that any hypercall may read, write,
/// unmap or map something over, because nothing the fuzzer needs is in it (its code, stack and
/// counters are elsewhere, and no value it passes names them), and where RAM ends.
struct Arena {
    static let pages: UInt64 = 32
    let scratch: UInt64
    let ramEnd: UInt64

    func contains(_ address: UInt64) -> Bool { address >= scratch && address < scratch + Self.pages * 4096 }
}

extension SplitMix64 {
    /// A guest pointer: mostly into scratch (so structures are read and written), else misaligned,
    /// straddling a page or the end of RAM, in a device, in the grant window, past RAM, or wild.
    mutating func pointer(_ arena: Arena) -> UInt64 {
        switch below(16) {
        case 0 ..< 8: return arena.scratch + below(Arena.pages) * 4096 + below(64) * 8
        case 8: return arena.scratch + below(Arena.pages * 4096)
        case 9: return arena.scratch + (below(Arena.pages) + 1) * 4096 - 1 - below(16)
        case 10: return arena.ramEnd - 1 - below(24)
        case 11: return GuestLayout.gicDistributor.raw + below(GuestLayout.gicDistributorSize)
        case 12: return GuestLayout.grantTable.raw + below(16) * 4096 + below(8) * 8
        case 13: return arena.ramEnd + below(16) * 4096
        case 14:
            switch below(5) {
            case 0: return 0
            case 1: return ~0
            case 2: return 0x1000_0000                      // a hole
            case 3: return 0xFFFF_0000_0000_0000
            default: return GuestLayout.uart.raw
            }
        default: return next()
        }
    }

    /// A guest frame number: a scratch page, or one that is not the guest's RAM.
    mutating func frame(_ arena: Arena) -> UInt64 {
        switch below(10) {
        case 0 ..< 5: return arena.scratch >> 12 + below(Arena.pages)
        case 5: return arena.ramEnd >> 12 + below(4)
        case 6: return GuestLayout.grantTable.raw >> 12 + below(32)
        case 7: return below(2) == 0 ? 0 : ~0
        case 8: return GuestLayout.gicDistributor.raw >> 12 + below(16)
        default: return next() >> below(64)
        }
    }

    /// A count, index, command, domain ID or flag word.
    mutating func integer() -> UInt64 {
        switch below(12) {
        case 0: return 0
        case 1: return below(4)
        case 2: return below(2) == 0 ? ~0 : 0xFFFF_FFFF
        case 3:
            switch below(8) {
            case 0: return 0x7FFF_FFFF
            case 1: return 0x8000_0000
            case 2: return 1 << 63
            case 3: return 4095
            case 4: return 4096
            case 5: return 0xFFFF
            case 6: return 0x1_0000
            default: return 1 << below(64)
            }
        case 4, 5: return below(64)
        case 6, 7:
            // DOMID_SELF, dom0 and its neighbours, DOMID_IO/XEN/COW/INVALID, past the last real one.
            switch below(8) {
            case 0, 1: return 0x7FF0
            case 2: return below(4)
            case 3: return 0x7FF1 + below(4)
            case 4: return 0x7FF4
            case 5: return 0x7FFF
            case 6: return 0xFFFF
            default: return 0x7FEF
            }
        case 8: return below(1024)
        default: return next()
        }
    }

    /// A word of a structure: a pointer, a frame, a plain integer, or 16- and 32-bit fields side by side.
    mutating func value(_ arena: Arena) -> UInt64 {
        switch below(8) {
        case 0, 1: return pointer(arena)
        case 2: return frame(arena)
        case 3: return integer() & 0xFFFF_FFFF | integer() << 32
        case 4: return integer() & 0xFFFF | (integer() & 0xFFFF) << 16 | integer() << 32
        default: return integer()
        }
    }

    /// A value for a register or an aligned field: never one naming the fuzzer's own memory.
    mutating func safeValue(_ arena: Arena) -> UInt64 {
        while true {
            let v = value(arena)
            if !arena.isOwn(v) && !arena.isOwn(v & 0xFFFF_FFFF) && !arena.isOwn(v >> 32) { return v }
        }
    }

    /// Fresh contents for the structure a pointer argument names, where it is in scratch. No 8- or
    /// 4-byte field read from it at any byte offset names the fuzzer's own memory (an address in its
    /// RAM below scratch, or the frame of one), so no hypercall is told to write over the fuzzer's code
    /// or take its pages away: each word is drawn again until none does, with the word before it (and
    /// zeros after it: the next word is checked in its turn; past the last one the words are old).
    mutating func fill(_ address: UInt64, words: UInt64, _ arena: Arena) {
        let start = address & ~7
        guard arena.contains(start) else { return }
        var previous = start > arena.scratch ? guest_load64(start - 8) : 0
        for i in 0 ..< words {
            let at = start + i * 8
            guard arena.contains(at) else { return }
            var word = value(arena)
            var tries = 0
            while arena.namesOwnMemory(previous, word) {
                tries += 1
                word = tries < 8 ? value(arena) : ~0
            }
            guest_store64(at, word)
            previous = word
        }
    }
}

extension Arena {
    /// Whether a field of 8 or 4 bytes that includes bytes of `word` names the fuzzer's own memory,
    /// with `previous` the word before it and zeros after it.
    func namesOwnMemory(_ previous: UInt64, _ word: UInt64) -> Bool {
        // Fields starting in the previous word, running into this one; then those starting in it.
        for shift: UInt64 in stride(from: 8, to: 64, by: 8) {
            let field = previous >> shift | word << (64 - shift)
            if isOwn(field) || shift > 32 && isOwn(field & 0xFFFF_FFFF) { return true }
        }
        for shift: UInt64 in stride(from: 0, to: 64, by: 8) {
            let field = word >> shift
            if isOwn(field) || isOwn(field & 0xFFFF_FFFF) { return true }
        }
        return false
    }

    func isOwn(_ value: UInt64) -> Bool {
        value >= GuestLayout.ram.raw && value < scratch || value >= GuestLayout.ram.raw >> 12 && value < scratch >> 12
    }
}
