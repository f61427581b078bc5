import Testing
@testable import TernCore

/// Placing a Linux Image from its header: where Linux's boot protocol puts each part, and what a header
/// or a module size from a bad boot device tree gets (refused, never a wrapped sum).
@Suite struct LinuxImageTests {
    static let mib: UInt64 = 1 << 20

    func header(textOffset: UInt64, imageSize: UInt64, magic: UInt32 = LinuxImage.magic, count: Int = 64) -> LinuxImage.Header? {
        var bytes = [UInt8](repeating: 0, count: count)
        func put(_ v: UInt64, at offset: Int, width: Int) {
            for i in 0 ..< width where offset + i < count { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
        }
        put(textOffset, at: 8, width: 8)
        put(imageSize, at: 16, width: 8)
        put(UInt64(magic), at: 56, width: 4)
        return bytes.withUnsafeBytes { LinuxImage.Header($0) }
    }

    @Test func headerNeedsTheMagicAndSixtyFourBytes() {
        #expect(header(textOffset: 0, imageSize: 0) == header(textOffset: 0, imageSize: 0, count: 4096))
        #expect(header(textOffset: 0, imageSize: 0) != nil)
        #expect(header(textOffset: 0, imageSize: 0, magic: 0x644D_5242) == nil)
        #expect(header(textOffset: 0, imageSize: 0, count: 63) == nil)
    }

    @Test func kernelAtItsOffsetInitrdBelowTheTreeInTheLastTwoMiB() throws {
        let h = try #require(header(textOffset: 0x8_0000, imageSize: 30 * Self.mib))
        let l = LinuxImage.layout(h, kernelSize: 20 * Self.mib, ramdiskSize: 3 * Self.mib, memoryBytes: 64 * Self.mib)
        #expect(l == LinuxImage.Layout(textOffset: 0x8_0000, ramdiskOffset: 58 * Self.mib, dtbOffset: 62 * Self.mib))
        // The module's size counts when the header says less; exactly full still fits.
        let full = LinuxImage.layout(h, kernelSize: 58 * Self.mib - 0x8_0000, ramdiskSize: 4 * Self.mib, memoryBytes: 64 * Self.mib)
        #expect(full?.ramdiskOffset == 58 * Self.mib)
        #expect(LinuxImage.layout(h, kernelSize: 58 * Self.mib - 0x8_0000 + 1, ramdiskSize: 4 * Self.mib, memoryBytes: 64 * Self.mib) == nil)
    }

    /// A header or module size near 2^64 must be refused, not wrap into something that seems to fit (a
    /// wrapped initrd size made the hypervisor copy far past the domain's RAM).
    @Test func hugeSizesAreRefusedNotWrapped() throws {
        let huge = try #require(header(textOffset: .max - 0xFFFF, imageSize: 0x1_0000))
        #expect(LinuxImage.layout(huge, kernelSize: 1, ramdiskSize: 0, memoryBytes: 64 * Self.mib) == nil)
        let h = try #require(header(textOffset: 0, imageSize: 0))
        #expect(LinuxImage.layout(h, kernelSize: .max, ramdiskSize: 0, memoryBytes: 64 * Self.mib) == nil)
        #expect(LinuxImage.layout(h, kernelSize: Self.mib, ramdiskSize: .max - 1, memoryBytes: 64 * Self.mib) == nil)
        #expect(LinuxImage.layout(h, kernelSize: Self.mib, ramdiskSize: 0, memoryBytes: Self.mib) == nil)
        // The fuzzer's find: an initrd as large as an unaligned RAM of 2^64 - 1 bytes wrapped to no space.
        #expect(LinuxImage.layout(h, kernelSize: Self.mib, ramdiskSize: .max, memoryBytes: .max) == nil)
    }
}
