// hvm_op's parameters, as a guest reads them to find its hypervisor-provided devices: the event-channel
// upcall, the console ring and its port, and xenstore (none yet: 0, which Linux takes as "no store").
// Who may ask and what the answer is are decided here, behind the seam; the hypervisor supplies the
// calling domain's values.

public enum HVMOp {
    /// A domain's parameters as HVMOP_get_param answers them.
    public struct Parameters: Equatable {
        public var callbackIRQ: UInt64
        public var consolePFN: UInt64
        public var consoleEvtchn: UInt64
        public var storePFN: UInt64
        public var storeEvtchn: UInt64

        public init(callbackIRQ: UInt64, consolePFN: UInt64, consoleEvtchn: UInt64, storePFN: UInt64 = 0, storeEvtchn: UInt64 = 0) {
            self.callbackIRQ = callbackIRQ
            self.consolePFN = consolePFN
            self.consoleEvtchn = consoleEvtchn
            self.storePFN = storePFN
            self.storeEvtchn = storeEvtchn
        }

        public func value(_ index: HVMParam) -> UInt64 {
            switch index {
            case .callback_irq: callbackIRQ
            case .console_pfn: consolePFN
            case .console_evtchn: consoleEvtchn
            case .store_pfn: storePFN
            case .store_evtchn: storeEvtchn
            }
        }
    }

    /// The answer to hvm_op `command` with its argument at `arg`, for the domain `caller`, whose
    /// parameters `parameters` gives.
    public static func handle<Memory: GuestMemoryAccess>(_ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory,
                                                         caller: DomainID, parameters: () -> Parameters) -> UInt64 {
        switch HVMOpCommand(rawValue: command) {
        case .get_param:
            // struct xen_hvm_param { domid_t domid; uint32_t index; uint64_t value; }
            guard let dom = memory.load32(arg), let index = memory.load32(arg + 4) else { return XenError.EFAULT.returnValue }
            guard namesCaller(UInt16(truncatingIfNeeded: dom), caller) else { return XenError.EPERM.returnValue }
            guard let param = HVMParam(rawValue: index) else { return XenError.EINVAL.returnValue }
            return memory.write(parameters().value(param), to: arg + 8) ? 0 : XenError.EFAULT.returnValue
        case .set_param:
            return XenError.EPERM.returnValue
        case nil:
            return XenError.ENOSYS.returnValue
        }
    }
}
