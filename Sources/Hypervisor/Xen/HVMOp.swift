// hvm_op: the calling domain's parameters for TernCore's HVMOp, which decides the rest.
import TernCore

func hvmOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    var memory = RunningGuestMemory()
    return HVMOp.handle(command, arg, &memory, caller: d.id) {
        HVMOp.Parameters(callbackIRQ: callbackIRQParameter(ppi: GuestLayout.eventChannelPPI),
                         consolePFN: d.consoleRing != nil ? MagicPages.console.frame.raw : 0,
                         consoleEvtchn: UInt64(d.consolePort.raw))
    }
}
