// vcpu_op: which vCPUs are up, and where a Xen guest's vcpu_info and runstate areas live (vCPUs start
// and stop with PSCI on Arm, as on Xen).
import TernArchAsm
import TernCore

func vcpuOp(_ command: UInt64, _ target: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard target < UInt64(d.vcpus.count) else { return XenError.ENOENT.returnValue }
    let t = d.vcpus[Int(target)]
    switch command {
    case VCPUOpCommand.is_up.rawValue:
        return t.online ? 1 : 0
    case VCPUOpCommand.register_vcpu_info.rawValue where d.xenPV:
        return registerVCPUInfo(t, arg)
    case VCPUOpCommand.register_runstate_memory_area.rawValue where d.xenPV:
        return registerRunstate(t, arg)
    case VCPUOpCommand.get_runstate_info.rawValue where d.xenPV:
        return runstateInfo(t, arg)
    default:
        // Arm guests start and stop vCPUs with PSCI; Xen on Arm refuses the rest of these too.
        return XenError.EINVAL.returnValue
    }
}

/// struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset, rsvd; }: the guest frame and offset
/// of the vCPU's vcpu_info, which must lie in its RAM within one page. Once per vCPU, as in Xen.
private func registerVCPUInfo(_ t: VCPU, _ arg: VirtualAddress) -> UInt64 {
    var request = (UInt64(0), UInt64(0))
    guard GuestMemory.read(&request, from: arg) else {
        return XenError.EFAULT.returnValue
    }
    guard let place = VCPUOp.vcpuInfoAddress(frame: request.0, offset: request.1),
          let host = t.domain.hostAddress(ofRAM: place, length: UInt64(VCPUInfoLayout.size)) else {
        return XenError.EINVAL.returnValue
    }
    let d = t.domain
    let registered: Bool = d.events.withLock { e in
        if t.vcpuInfo != nil { return false }
        // Carry over what the old place held, then say "look at everything", as Xen does, so nothing
        // that arrived before the move is lost.
        let size = UInt64(VCPUInfoLayout.size)
        if t.index == 0, let shared = e.sharedInfo {
            tern_copy(host.raw, (shared + UInt64(SharedInfoLayout.vcpuInfo0)).raw, size)
        } else {
            tern_zero(host.raw, size)
        }
        tern_store64((host + UInt64(VCPUInfoLayout.pendingSelector)).raw, .max)
        tern_store8((host + UInt64(VCPUInfoLayout.upcallPending)).raw, 1)
        tern_memory_barrier()
        t.publishVCPUInfo(host)
        return true
    }
    guard registered else { return XenError.EINVAL.returnValue }
    raiseEventUpcall(t)
    return 0
}
