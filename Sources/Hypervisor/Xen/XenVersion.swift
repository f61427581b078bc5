// xen_version: the version guests check first (answered inline: it is the null hypercall guests
// measure), and what Linux shows in /sys/hypervisor, in Xen's shapes with Tern's own words.
import TernArchAsm
import TernCore

/// XENVER_version is the null hypercall guests measure and poll: answered inline, with no frame of its own.
@inline(__always)
func xenVersion(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    command == XenVersionCommand.version.rawValue ? xenMajor << 16 | xenMinor : xenVersionQuery(command, arg, v)
}

@inline(never)
private func xenVersionQuery(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    switch command {
    case XenVersionCommand.extraversion.rawValue:
        // xen_extraversion_t: char[16], NUL-padded: "-tern" as two little-endian words. A buffer
        // inside one page takes one translation and two stores; any other goes through the page walk.
        let words: (UInt64, UInt64) = (0x6E_7265_742D, 0)
        if arg.raw & 7 == 0, arg.raw & 0xFFF <= 0xFF0, let pa = GuestMemory.translate(arg, write: true) {
            tern_store64(pa.raw, words.0)
            tern_store64(pa.raw + 8, words.1)
            return 0
        }
        return GuestMemory.write(words, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.get_features.rawValue:
        // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
        guard let index = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        var submap: UInt32 = 0
        if index == 0 {
            submap = 1 << XenFeature.writable_page_tables.rawValue | 1 << XenFeature.auto_translated_physmap.rawValue
                | 1 << XenFeature.ARM_SMCCC_supported.rawValue
            if v.domain.privileged { submap |= 1 << XenFeature.dom0.rawValue }
            // Linux picks swiotlb-xen (bounce buffers for DMA by host address) only when direct-mapped.
            submap |= 1 << (v.domain.spec.directMapped ? XenFeature.direct_mapped : XenFeature.not_direct_mapped).rawValue
        }
        return GuestMemory.store32(arg + 4, submap) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.pagesize.rawValue:
        return pageSize
    // What Linux shows under /sys/hypervisor: honest about being Tern, in Xen's shapes.
    case XenVersionCommand.compile_info.rawValue:
        let L = XenVersionLayout.self
        return GuestMemory.writeText("Swift 6.3 (Embedded)", size: L.compilerSize, to: arg + UInt64(L.compiler))
            && GuestMemory.writeText("tern", size: L.compileBySize, to: arg + UInt64(L.compileBy))
            && GuestMemory.writeText("", size: L.compileDomainSize, to: arg + UInt64(L.compileDomain))
            && GuestMemory.writeText("", size: L.compileDateSize, to: arg + UInt64(L.compileDate)) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.capabilities.rawValue:
        // Xen on arm64 also lists "xen-3.0-armv7l"; Tern runs 64-bit guests only.
        return GuestMemory.writeText("xen-3.0-aarch64 ", size: XenVersionLayout.capabilitiesSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.changeset.rawValue:
        return GuestMemory.writeText("tern-0.1.0", size: XenVersionLayout.changesetSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.platform_parameters.rawValue:
        // struct xen_platform_parameters { xen_ulong_t virt_start; }: no hypervisor hole in an Arm guest.
        return GuestMemory.write(UInt64(0), to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.guest_handle.rawValue:
        // xen_domain_handle_t: the toolstack's UUID for the domain; Tern's domains have none yet.
        return GuestMemory.writeText("", size: XenVersionLayout.guestHandleSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.commandline.rawValue:
        guard v.domain.privileged else { return XenError.EPERM.returnValue }
        return GuestMemory.writeText("", size: XenVersionLayout.commandLineSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.build_id.rawValue:
        return XenError.ENODATA.returnValue       // Xen's answer when it was built without a build id
    default:
        return XenError.ENOSYS.returnValue
    }
}
