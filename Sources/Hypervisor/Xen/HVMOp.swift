// hvm_op: the parameters a guest reads to find its hypervisor-provided devices: the event-channel
// upcall, the console ring and its port, and xenstore (none yet: 0, which Linux takes as "no store").
import TernCore

func hvmOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    switch HVMOpCommand(rawValue: command) {
    case .get_param:
        // struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; }
        guard let dom = GuestMemory.load32(arg), let index = GuestMemory.load32(arg + 4) else {
            return XenError.EFAULT.returnValue
        }
        guard isSelf(UInt16(truncatingIfNeeded: dom), d) else { return XenError.EPERM.returnValue }
        let value: UInt64
        switch HVMParam(rawValue: index) {
        case .callback_irq: value = callbackIRQParameter(ppi: GuestLayout.eventChannelPPI)
        case .console_pfn: value = d.consoleRing != 0 ? MagicPages.console.raw >> 12 : 0
        case .console_evtchn: value = UInt64(d.consolePort)
        case .store_pfn, .store_evtchn: value = 0
        case nil: return XenError.EINVAL.returnValue
        }
        return GuestMemory.write(value, to: arg + 8) ? 0 : XenError.EFAULT.returnValue
    case .set_param:
        return XenError.EPERM.returnValue
    case nil:
        return XenError.ENOSYS.returnValue
    }
}
