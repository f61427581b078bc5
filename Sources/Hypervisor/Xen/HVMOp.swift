// hvm_op: TernCore's HVMOp decides; each domain keeps its parameters (Tern's own for the domains it
// builds, the toolstack's for the ones libxl builds).
import TernCore

func hvmOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    var memory = RunningGuestMemory()
    return HVMOp.handle(command, arg, &memory, HVMParameters(caller: d.id, privileged: d.privileged))
}

struct HVMParameters: HVMOpHost {
    let caller: DomainID
    let privileged: Bool

    func parameter(of id: DomainID, _ index: Int) -> UInt64? {
        withHeldDomain(id, xenPV: true) { d in d.hvmParameters.withLock { $0[index] } }
    }

    func setParameter(of id: DomainID, _ index: Int, to value: UInt64) -> Bool {
        withHeldDomain(id, xenPV: true) { d in d.hvmParameters.withLock { $0[index] = value } } != nil
    }
}

/// A Xen PV domain's parameters before its guest or the toolstack has asked anything: where its event
/// upcall arrives and, for the domains Tern builds, Tern's console ring and its port.
func initialHVMParameters(_ d: Domain) {
    d.hvmParameters.withLock { p in
        p[Int(HVMParam.callback_irq.rawValue)] = callbackIRQParameter(ppi: GuestLayout.eventChannelPPI)
        if d.consoleRing != nil {
            p[Int(HVMParam.console_pfn.rawValue)] = MagicPages.console.frame.raw
            p[Int(HVMParam.console_evtchn.rawValue)] = UInt64(d.consolePort.raw)
        }
    }
}
