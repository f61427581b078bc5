// Where a Linux arm64 Image, its initrd and its device tree go in a new domain's RAM (Linux's
// Documentation/arch/arm64/booting.rst): the kernel at the header's text_offset from the start of RAM,
// the device tree in the last 2 MiB, the initrd 2 MiB-aligned just below it. The header and the
// modules' sizes come from the boot device tree (or the toolstack's domain), not from Tern.
public enum LinuxImage {
    /// "ARM\x64", little-endian, at offset 56 of the header.
    public static let magic: UInt32 = 0x644D_5241
    public static let headerSize = 64
    static let twoMiB: UInt64 = 0x20_0000

    /// The header's fields Tern uses; nil for bytes that are not an arm64 Image's header.
    public struct Header: Equatable, Sendable {
        public var textOffset: UInt64
        public var imageSize: UInt64

        public init?(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count >= LinuxImage.headerSize,
                  bytes.loadUnaligned(fromByteOffset: 56, as: UInt32.self).littleEndian == LinuxImage.magic else { return nil }
            textOffset = bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
            imageSize = bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self).littleEndian
        }
    }

    public struct Layout: Equatable, Sendable {
        public var textOffset: UInt64
        public var ramdiskOffset: UInt64
        public var dtbOffset: UInt64
    }

    /// The offsets from the start of RAM, or nil when the kernel (the larger of its header's
    /// image_size and its module's size) and the initrd do not fit below the device tree.
    public static func layout(_ header: Header, kernelSize: UInt64, ramdiskSize: UInt64, memoryBytes: UInt64) -> Layout? {
        // Every size is checked before it is added to: a wrapped sum would seem to fit.
        guard memoryBytes >= 2 * twoMiB else { return nil }
        let dtbOffset = memoryBytes - twoMiB
        // At most 2^64 - 2 MiB, so its alignment up cannot wrap.
        guard ramdiskSize <= dtbOffset else { return nil }
        let ramdiskSpace = alignUp(ramdiskSize, twoMiB)
        let imageSize = max(header.imageSize, kernelSize)
        guard ramdiskSpace <= dtbOffset, header.textOffset <= dtbOffset - ramdiskSpace,
              imageSize <= dtbOffset - ramdiskSpace - header.textOffset else { return nil }
        return Layout(textOffset: header.textOffset, ramdiskOffset: dtbOffset - ramdiskSpace, dtbOffset: dtbOffset)
    }
}
