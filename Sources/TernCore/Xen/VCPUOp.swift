// vcpu_op's rules that need no hypervisor state: where a vcpu_info may be placed.

public enum VCPUOp {
    /// struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset, rsvd; }: the guest-physical
    /// address the vcpu_info goes to, or nil (-EINVAL) when the frame is beyond the guest's 48-bit
    /// address space, the offset is not 8-byte aligned (its pending selector changes by 64-bit atomics,
    /// which fault when misaligned) or the structure would cross its page. Whether it lies in the
    /// domain's RAM is the caller's to check.
    public static func vcpuInfoAddress(frame: UInt64, offset: UInt64) -> GuestPhysicalAddress? {
        let offset = offset & 0xFFFF_FFFF
        guard let frame = GuestFrameNumber(guest: frame), offset & 7 == 0,
              offset + UInt64(VCPUInfoLayout.size) <= pageSize else { return nil }
        return frame.address + offset
    }
}
