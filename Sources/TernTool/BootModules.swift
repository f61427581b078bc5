import Foundation

/// A file QEMU places in guest-physical memory for the hypervisor to find through the boot device tree
/// (Xen's dom0less "multiboot,module" scheme).
public struct BootModule: Equatable, Sendable {
    public enum Kind: Equatable, Sendable { case kernel, ramdisk }

    public var domain: Int
    public var kind: Kind
    public var file: URL
    public var address: UInt64
    public var size: UInt64

    public init(domain: Int, kind: Kind, file: URL, address: UInt64, size: UInt64) {
        self.domain = domain
        self.kind = kind
        self.file = file
        self.address = address
        self.size = size
    }
}

/// Where modules go, and how much RAM the machine needs to hold them and the domains.
public enum ModuleLayout {
    /// QEMU's virt board starts RAM at 1 GiB. The first 256 MiB are left to the hypervisor image and the
    /// DTB, which QEMU itself puts 128 MiB into RAM.
    public static let ramBase: UInt64 = 0x4000_0000
    public static let firstAddress: UInt64 = 0x5000_0000
    /// The hypervisor maps and reserves memory in 2 MiB blocks; aligning modules to them keeps two
    /// modules from sharing a block.
    public static let alignment: UInt64 = 0x20_0000
    /// Room for the hypervisor's own allocations (page tables, per-domain structures).
    public static let slackMiB = 64
    /// Below this QEMU's virt board with a GICv3 is not worth booting.
    public static let minimumMachineMiB = 1024
    /// The most RAM QEMU's virt board has with RAM at 0x40000000: 255 GiB ("mach-virt: cannot model more
    /// than 255GB RAM"). It ends at 256 GiB, inside the hypervisor's 39-bit identity map.
    public static let maximumMachineMiB = 255 * 1024

    private static let mib: UInt64 = 1 << 20

    /// Consecutive, each aligned, in the order given. Zero-sized modules still get their own address so
    /// that two reg entries never coincide.
    public static func addresses(forSizes sizes: [UInt64]) -> [UInt64] {
        var next = firstAddress
        var result: [UInt64] = []
        for size in sizes {
            result.append(next)
            next = alignUp(next + max(size, 1), alignment)
        }
        return result
    }

    /// Kernels and ramdisks for `domains`, laid out in domain order, kernel before ramdisk.
    public static func place(_ files: [(domain: Int, kind: BootModule.Kind, file: URL, size: UInt64)]) -> [BootModule] {
        let addresses = addresses(forSizes: files.map(\.size))
        return zip(files, addresses).map { file, address in
            BootModule(domain: file.domain, kind: file.kind, file: file.file, address: address, size: file.size)
        }
    }

    /// RAM for QEMU's -m, in MiB: the reserved first 256 MiB, the modules (measured from where the first
    /// starts to where the last ends, so alignment gaps count), every domain's memory (which the
    /// hypervisor rounds up to 2 MiB), and slack.
    public static func machineMemoryMiB(modules: [BootModule], domainMemoryMiB: [Int]) -> Int {
        let reserved = Int((firstAddress - ramBase) / mib)
        let end = modules.map { $0.address + $0.size }.max() ?? firstAddress
        let moduleMiB = Int((end - firstAddress + mib - 1) / mib)
        return max(minimumMachineMiB, reserved + moduleMiB + domainMemoryMiB.reduce(0) { $0 + allocatedMiB($1) } + slackMiB)
    }

    /// What a domain of `memoryMiB` takes: the hypervisor gives each domain whole 2 MiB blocks.
    public static func allocatedMiB(_ memoryMiB: Int) -> Int {
        (memoryMiB + 1) / 2 * 2
    }

    static func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
        (value + alignment - 1) & ~(alignment - 1)
    }
}
