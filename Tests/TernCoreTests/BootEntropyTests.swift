import Testing
import TernCore

@Suite struct BootEntropyTests {
    /// RFC 8439, section 2.3.2's test vector.
    @Test func chacha20IsRFC8439s() {
        var key: [UInt32] = []
        for i in 0 ..< 8 {
            var word: UInt32 = 0
            for j in 0 ..< 4 { word |= UInt32(4 * i + j) << UInt32(8 * j) }
            key.append(word)
        }
        let out = ChaCha20.block(key: key, counter: 1, nonce: [0x0900_0000, 0x4A00_0000, 0])
        var hex = ""
        for w in out {
            for j in 0 ..< 4 {
                let byte = UInt8(truncatingIfNeeded: w >> UInt32(8 * j))
                hex += (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        #expect(hex == "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
                     + "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e")
    }

    /// Each domain's seed is 64 bytes, differs from the others' and from the host's, and depends on
    /// the host's seed; too short a host seed gives none.
    @Test func everyDomainGetsASeedOfItsOwn() {
        let host = (0 ..< 32).map { UInt8($0 * 7 & 0xFF) }
        var a = BootEntropy(hostSeed: host)!
        let seeds = (0 ..< 4).map { _ in a.next() }
        #expect(seeds.allSatisfy { $0.count == 64 })
        #expect(Set(seeds.map { $0.description }).count == 4)
        #expect(!seeds.contains { Array($0.prefix(32)) == host })
        var b = BootEntropy(hostSeed: host.map { $0 ^ 1 })!
        #expect(b.next() != seeds[0])
        var again = BootEntropy(hostSeed: host)!
        #expect(again.next() == seeds[0])
        #expect(BootEntropy(hostSeed: Array(host.prefix(15))) == nil)
    }
}
