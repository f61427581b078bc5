// Seeds for the domains' random number generators. QEMU (and firmware that does so) puts random bytes
// in the host device tree's /chosen/rng-seed; Xen 4.17's dom0 inherits that node, and Linux credits it
// at once, so its getrandom() never waits. Without one, a Linux domain's getrandom() blocks until
// interrupts have given it enough entropy (seconds under QEMU: xl create's UUID waits on it). Tern
// gives every domain it builds a seed of its own: ChaCha20 keyed by the host's seed, one block per
// domain with a counter that never repeats, so no domain learns the host's seed or another's.

public struct BootEntropy {
    var key: [UInt32]
    var counter: UInt64 = 0

    /// nil when the host gave less than 16 bytes; a longer seed is folded into the 32-byte key.
    public init?(hostSeed: [UInt8]) {
        guard hostSeed.count >= 16 else { return nil }
        var k = [UInt32](repeating: 0, count: 8)
        for (i, byte) in hostSeed.enumerated() { k[(i / 4) % 8] ^= UInt32(byte) << UInt32(8 * (i % 4)) }
        key = k
    }

    /// The next domain's seed: 64 bytes, never the same twice.
    public mutating func next() -> [UInt8] {
        counter += 1
        let words = ChaCha20.block(key: key, counter: UInt32(truncatingIfNeeded: counter),
                                   nonce: [UInt32(truncatingIfNeeded: counter >> 32), 0x6E72_6574 /* "tern" */, 0])
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for w in words { for shift in stride(from: 0, to: 32, by: 8) { bytes.append(UInt8(truncatingIfNeeded: w >> UInt32(shift))) } }
        return bytes
    }
}

/// The ChaCha20 block function of RFC 8439 (section 2.3).
public enum ChaCha20 {
    public static func block(key: [UInt32], counter: UInt32, nonce: [UInt32]) -> [UInt32] {
        precondition(key.count == 8 && nonce.count == 3)
        let initial: [UInt32] = [0x6170_7865, 0x3320_646E, 0x7962_2D32, 0x6B20_6574] + key + [counter] + nonce
        var x = initial
        func quarter(_ a: Int, _ b: Int, _ c: Int, _ d: Int) {
            x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d] << 16 | x[d] >> 16
            x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b] << 12 | x[b] >> 20
            x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d] << 8 | x[d] >> 24
            x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b] << 7 | x[b] >> 25
        }
        for _ in 0 ..< 10 {
            quarter(0, 4, 8, 12); quarter(1, 5, 9, 13); quarter(2, 6, 10, 14); quarter(3, 7, 11, 15)
            quarter(0, 5, 10, 15); quarter(1, 6, 11, 12); quarter(2, 7, 8, 13); quarter(3, 4, 9, 14)
        }
        for i in 0 ..< 16 { x[i] &+= initial[i] }
        return x
    }
}
