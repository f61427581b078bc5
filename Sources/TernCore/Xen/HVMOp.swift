// hvm_op's parameters (xen/include/public/hvm/params.h): how a guest finds the devices its hypervisor
// and toolstack gave it (the event-channel upcall, the console ring and xenstore, their ports), and how
// the toolstack tells a domain it builds where they are. Who may ask, what may be set and Xen's errors
// are decided here; the host keeps each domain's parameters.

/// What hvm_op needs from the hypervisor, for one calling domain.
public protocol HVMOpHost {
    var caller: DomainID { get }
    /// The control domain's (Xen's dummy XSM lets only it touch another domain's parameters).
    var privileged: Bool { get }
    /// Parameter `index` (below HVMOp.parameterCount) of domain `id`; nil when there is no such domain.
    func parameter(of id: DomainID, _ index: Int) -> UInt64?
    /// Sets it; false when there is no such domain.
    func setParameter(of id: DomainID, _ index: Int, to value: UInt64) -> Bool
}

public enum HVMOp {
    /// HVM_NR_PARAMS in Xen 4.17.
    public static let parameterCount = 39

    /// The answer to hvm_op `command` with its struct xen_hvm_param { domid_t domid; uint32_t index;
    /// uint64_t value; } at `arg`. A domain reads its own parameters; only the control domain reads or
    /// sets another's. Tern's guests do not set their own (their values come from Tern or the toolstack).
    public static func handle<Memory: GuestMemoryAccess, Host: HVMOpHost>(_ command: UInt64, _ arg: VirtualAddress,
                                                                          _ memory: inout Memory, _ host: Host) -> UInt64 {
        guard let op = HVMOpCommand(rawValue: command) else { return XenError.ENOSYS.returnValue }
        guard let dom = memory.load32(arg), let index = memory.load32(arg + 4) else { return XenError.EFAULT.returnValue }
        let own = namesCaller(UInt16(truncatingIfNeeded: dom), host.caller)
        guard host.privileged || (own && op == .get_param) else { return XenError.EPERM.returnValue }
        guard index < UInt32(parameterCount) else { return XenError.EINVAL.returnValue }
        let id = own ? host.caller : DomainID(UInt16(truncatingIfNeeded: dom))
        switch op {
        case .get_param:
            guard let value = host.parameter(of: id, Int(index)) else { return XenError.ESRCH.returnValue }
            return memory.write(value, to: arg + 8) ? 0 : XenError.EFAULT.returnValue
        case .set_param:
            var value: UInt64 = 0
            guard memory.read(&value, from: arg + 8) else { return XenError.EFAULT.returnValue }
            return host.setParameter(of: id, Int(index), to: value) ? 0 : XenError.ESRCH.returnValue
        }
    }
}
