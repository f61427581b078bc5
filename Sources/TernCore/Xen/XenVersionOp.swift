// xen_version's queries: what Linux shows in /sys/hypervisor and reads at boot, in Xen's shapes with
// Tern's own words. XENVER_version (the null hypercall guests measure) and a fast path for the
// extraversion are the hypervisor's, inline; everything else is decided here, behind the seam.

public enum XenVersionOp {
    /// What the caller is, as far as xen_version cares.
    public struct Caller {
        public var privileged: Bool
        public var directMapped: Bool
        /// The control domain's size, which Xen's own command line would give (see writeCommandLine).
        public var dom0MemoryMiB: Int
        public var dom0VCPUs: Int
        public init(privileged: Bool, directMapped: Bool, dom0MemoryMiB: Int = 0, dom0VCPUs: Int = 0) {
            self.privileged = privileged
            self.directMapped = directMapped
            self.dom0MemoryMiB = dom0MemoryMiB
            self.dom0VCPUs = dom0VCPUs
        }
    }

    /// XENVER_commandline: the Xen command line equivalent to the boot configuration. Tern's dom0 has
    /// a fixed size, which on Xen dom0_mem and dom0_max_vcpus say; xl reads it to decide whether to
    /// balloon dom0 down before each create (its autoballoon "auto": only without dom0_mem), and
    /// `xl info` shows it as xen_commandline. Empty without a control domain.
    static func writeCommandLine<Memory: GuestMemoryAccess>(_ caller: Caller, _ memory: inout Memory, to arg: VirtualAddress) -> Bool {
        var text: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &text) { b in
            var n = 0
            func put(_ s: StaticString) {
                for i in 0 ..< s.utf8CodeUnitCount { b[n] = s.utf8Start[i]; n += 1 }
            }
            func put(_ value: Int) {
                var digits = 1, v = value
                while v >= 10 { v /= 10; digits += 1 }
                v = value
                for i in stride(from: n + digits - 1, through: n, by: -1) { b[i] = UInt8(truncatingIfNeeded: 48 + v % 10); v /= 10 }
                n += digits
            }
            if caller.dom0MemoryMiB > 0 {
                put("dom0_mem=")
                put(caller.dom0MemoryMiB)
                put("M dom0_max_vcpus=")
                put(caller.dom0VCPUs)
            }
            return memory.writeText(UnsafeRawBufferPointer(rebasing: b[0 ..< n]), size: XenVersionLayout.commandLineSize, to: arg)
        }
    }

    /// "-tern" as xen_extraversion_t's first word (char[16], NUL-padded, little-endian).
    public static let extraversionWord: UInt64 = 0x6E_7265_742D

    /// The answer to `command` with its argument at `arg`: the value for x0.
    public static func query<Memory: GuestMemoryAccess>(_ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory,
                                                        caller: Caller) -> UInt64 {
        let efault = XenError.EFAULT.returnValue
        switch command {
        case XenVersionCommand.version.rawValue:
            return xenMajor << 16 | xenMinor
        case XenVersionCommand.extraversion.rawValue:
            return memory.write((extraversionWord, UInt64(0)), to: arg) ? 0 : efault
        case XenVersionCommand.get_features.rawValue:
            // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
            guard let index = memory.load32(arg) else { return efault }
            return memory.store32(arg + 4, index == 0 ? features(caller) : 0) ? 0 : efault
        case XenVersionCommand.pagesize.rawValue:
            return pageSize
        case XenVersionCommand.compile_info.rawValue:
            let L = XenVersionLayout.self
            return memory.writeText("Swift 6.3 (Embedded)", size: L.compilerSize, to: arg + UInt64(L.compiler))
                && memory.writeText("tern", size: L.compileBySize, to: arg + UInt64(L.compileBy))
                && memory.writeText("", size: L.compileDomainSize, to: arg + UInt64(L.compileDomain))
                && memory.writeText("", size: L.compileDateSize, to: arg + UInt64(L.compileDate)) ? 0 : efault
        case XenVersionCommand.capabilities.rawValue:
            // Xen on arm64 also lists "xen-3.0-armv7l"; Tern runs 64-bit guests only.
            return memory.writeText("xen-3.0-aarch64 ", size: XenVersionLayout.capabilitiesSize, to: arg) ? 0 : efault
        case XenVersionCommand.changeset.rawValue:
            return memory.writeText("tern-0.1.0", size: XenVersionLayout.changesetSize, to: arg) ? 0 : efault
        case XenVersionCommand.platform_parameters.rawValue:
            // struct xen_platform_parameters { xen_ulong_t virt_start; }: no hypervisor hole in an Arm guest.
            return memory.write(UInt64(0), to: arg) ? 0 : efault
        case XenVersionCommand.guest_handle.rawValue:
            // xen_domain_handle_t: the toolstack's UUID for the domain; Tern's domains have none yet.
            return memory.writeText("", size: XenVersionLayout.guestHandleSize, to: arg) ? 0 : efault
        case XenVersionCommand.commandline.rawValue:
            // Xen's dummy XSM denies it to a domU, and Xen then copies "<denied>" and its NUL, no more.
            guard caller.privileged else {
                let denied: StaticString = "<denied>"
                return memory.copy(to: arg, from: UnsafeRawPointer(denied.utf8Start), count: denied.utf8CodeUnitCount + 1) ? 0 : efault
            }
            return writeCommandLine(caller, &memory, to: arg) ? 0 : efault
        case XenVersionCommand.build_id.rawValue:
            // Denied to a domU first, as Xen's dummy XSM does; then Xen's answer when built without one.
            return caller.privileged ? XenError.ENODATA.returnValue : XenError.EPERM.returnValue
        default:
            return XenError.ENOSYS.returnValue
        }
    }

    /// XENVER_get_features' submap 0 for this caller.
    public static func features(_ caller: Caller) -> UInt32 {
        var submap: UInt32 = 1 << XenFeature.writable_page_tables.rawValue | 1 << XenFeature.auto_translated_physmap.rawValue
            | 1 << XenFeature.ARM_SMCCC_supported.rawValue
        if caller.privileged { submap |= 1 << XenFeature.dom0.rawValue }
        // Linux picks swiotlb-xen (bounce buffers for DMA by host address) only when direct-mapped.
        submap |= 1 << (caller.directMapped ? XenFeature.direct_mapped : XenFeature.not_direct_mapped).rawValue
        return submap
    }
}
