// grant_table_op: TernCore's GrantTableOp decides, with the calling domain as its host (GrantMapping.swift);
// a batch too long for one call continues from its HVC, as on Xen.
import TernCore

func grantTableOp(_ command: UInt64, _ arg: VirtualAddress, _ count: UInt64, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard d.xenPV else { return XenError.ENOSYS.returnValue }
    var memory = RunningGuestMemory()
    switch GrantTableOp.handle(command, arg, count, &memory, d) {
    case .done(let result):
        return result
    case .continues(let rest, let remaining):
        return continueHypercall(v, rest.raw, remaining)
    }
}
