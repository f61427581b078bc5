// vcpu_op: which vCPUs are up, and where a Xen guest's vcpu_info and runstate areas live (vCPUs start
// and stop with PSCI on Arm, as on Xen), decided here and host-tested; the VCPUOpHost places them.

/// What vcpu_op needs from the hypervisor, for one calling domain.
public protocol VCPUOpHost {
    var vcpuCount: Int { get }
    /// Xen PV: the domain was told it runs on Xen, and so has vcpu_info and runstate areas.
    var xenPV: Bool { get }
    func isOnline(_ vcpu: Int) -> Bool
    /// Places `vcpu`'s vcpu_info at `address`: EINVAL when that is not the caller's RAM, or the vCPU
    /// has one already (once per vCPU, as in Xen); 0 when placed.
    func registerVCPUInfo(_ vcpu: Int, at address: GuestPhysicalAddress) -> UInt64
    /// Where `vcpu`'s runstate area is (a guest virtual address, 8-byte aligned), or nil for none:
    /// false when the address does not translate to the caller's RAM.
    func registerRunstateArea(_ vcpu: Int, at address: VirtualAddress?) -> Bool
    /// `vcpu`'s vcpu_runstate_info as of now.
    func runstateInfo(_ vcpu: Int) -> VCPURunstateInfo
}

public enum VCPUOp {
    public static func handle<Memory: GuestMemoryAccess, Host: VCPUOpHost>(
        _ command: UInt64, _ target: UInt64, _ arg: VirtualAddress, _ memory: inout Memory, _ host: Host) -> UInt64 {
        guard target < UInt64(host.vcpuCount) else { return XenError.ENOENT.returnValue }
        let vcpu = Int(target)
        switch VCPUOpCommand(rawValue: command) {
        case .is_up:
            return host.isOnline(vcpu) ? 1 : 0
        case .register_vcpu_info where host.xenPV:
            var request = VCPURegisterVCPUInfo()
            guard memory.read(&request, from: arg) else { return XenError.EFAULT.returnValue }
            guard let place = vcpuInfoAddress(frame: request.mfn, offset: UInt64(request.offset)) else {
                return XenError.EINVAL.returnValue
            }
            return host.registerVCPUInfo(vcpu, at: place)
        case .register_runstate_memory_area where host.xenPV:
            // struct vcpu_register_runstate_memory_area: one guest handle (a virtual address); 0 stops.
            var address: UInt64 = 0
            guard memory.read(&address, from: arg) else { return XenError.EFAULT.returnValue }
            if address == 0 { return host.registerRunstateArea(vcpu, at: nil) ? 0 : XenError.EFAULT.returnValue }
            // Whole words, so an update never tears one; Linux's per-CPU structure always is aligned.
            guard address & 7 == 0 else { return XenError.EINVAL.returnValue }
            return host.registerRunstateArea(vcpu, at: VirtualAddress(address)) ? 0 : XenError.EFAULT.returnValue
        case .get_runstate_info where host.xenPV:
            return memory.write(host.runstateInfo(vcpu), to: arg) ? 0 : XenError.EFAULT.returnValue
        default:
            // Arm guests start and stop vCPUs with PSCI; Xen on Arm refuses the rest of these too.
            return XenError.EINVAL.returnValue
        }
    }

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

/// struct vcpu_register_vcpu_info (public/vcpu.h).
public struct VCPURegisterVCPUInfo {
    public var mfn: UInt64 = 0
    public var offset: UInt32 = 0
    var reserved: UInt32 = 0
    public init() {}
}

/// struct vcpu_runstate_info (public/vcpu.h): the state, when it was entered, and the time spent in
/// each state (running, runnable, blocked, offline), in nanoseconds.
public struct VCPURunstateInfo: Equatable {
    public var state: Int32 = 0
    var padding: UInt32 = 0
    public var stateEntryTime: UInt64 = 0
    public var time: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    public init() {}

    /// From Runstate's words: state, entry time, then the four times.
    public init(_ w: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)) {
        state = Int32(truncatingIfNeeded: w.0)
        stateEntryTime = w.1
        time = (w.2, w.3, w.4, w.5)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.state == b.state && a.stateEntryTime == b.stateEntryTime && a.time == b.time
    }
}
