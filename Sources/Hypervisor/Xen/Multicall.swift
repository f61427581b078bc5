// multicall(struct multicall_entry *list, uint32_t count): several hypercalls in one trap, each
// entry's result written back into it, as libxc batches them. The entries are hypercalls that finish
// in one go, or memory_op, whose long reservations go on in continuations of the multicall; those that
// may leave the CPU (sched_op), continue (grant_table_op, console_io) or nest (multicall) get -ENOSYS
// in their entry instead, said once on the console. Tern's answer to the call
// itself is 0, or -EFAULT when the list cannot be read or written.
import TernArchAsm
import TernCore

/// struct multicall_entry on arm64: op, result, args[6] (xen_ulong_t each).
struct MulticallEntry {
    var op: UInt64 = 0
    var result: UInt64 = 0
    var args: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0)
}

/// At most this many entries per trap, so a long list cannot hold the CPU: Xen preempts there too.
let multicallEntriesPerCall: UInt64 = 64

/// Out of line: inlined into the hypercall switch, its loop costs every trap a register pair to save.
@inline(never) func multicall(_ list: VirtualAddress, _ count: UInt64, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    let now = min(count & 0xFFFF_FFFF, multicallEntriesPerCall)
    let size = UInt64(MemoryLayout<MulticallEntry>.stride)
    for i in 0 ..< now {
        var entry = MulticallEntry()
        let at = list + i * size
        guard memory.read(&entry, from: at) else { return XenError.EFAULT.returnValue }
        entry.result = batchedHypercall(entry, v)
        if entry.op == Hypercall.memory_op.rawValue, let next = takeMemoryOpContinuation() {
            // A long reservation stopped short: its entry's command moves on, and the multicall goes
            // on from this entry, as Xen's does around a preempted call.
            guard memory.write(next, to: at + 16) else { return XenError.EFAULT.returnValue }
            let f = v.frame
            f.pointee.x.1 = (count & 0xFFFF_FFFF) - i
            f.pointee.elr &-= 4
            return at.raw
        }
        guard memory.write(entry.result, to: at + 8) else { return XenError.EFAULT.returnValue }
        if entry.op == Hypercall.memory_op.rawValue && i + 1 < (count & 0xFFFF_FFFF) {
            // One memory_op's worth of work (up to MemoryOp.pagesPerCall) a trap: the rest goes on
            // in a continuation, as Xen checks for preemption between entries.
            let f = v.frame
            f.pointee.x.1 = (count & 0xFFFF_FFFF) - (i + 1)
            f.pointee.elr &-= 4
            return (at + size).raw
        }
    }
    let left = (count & 0xFFFF_FFFF) - now
    guard left != 0 else { return 0 }
    // The rest as a continuation: the HVC again, with the list and count moved on (x0 and x1 here,
    // where continueHypercall's calls keep theirs in x1 and x2).
    let f = v.frame
    f.pointee.x.1 = left
    f.pointee.elr &-= 4
    return (list + now * size).raw
}

private func batchedHypercall(_ e: MulticallEntry, _ v: VCPU) -> UInt64 {
    let result: UInt64
    switch e.op {
    case Hypercall.xen_version.rawValue: result = xenVersion(e.args.0, VirtualAddress(e.args.1), v)
    case Hypercall.memory_op.rawValue:
        let cpu = thisCPU()
        cpu.inMulticall = true
        result = memoryOp(e.args.0, VirtualAddress(e.args.1), v)
        cpu.inMulticall = false
    case Hypercall.event_channel_op.rawValue: result = eventChannelOp(e.args.0, VirtualAddress(e.args.1), v)
    case Hypercall.hvm_op.rawValue: result = hvmOp(e.args.0, VirtualAddress(e.args.1), v)
    case Hypercall.vcpu_op.rawValue: result = vcpuOp(e.args.0, e.args.1, VirtualAddress(e.args.2), v)
    case Hypercall.sysctl.rawValue: result = sysctl(VirtualAddress(e.args.0), v)
    case Hypercall.domctl.rawValue: result = domctl(VirtualAddress(e.args.0), v)
    default: result = XenError.ENOSYS.returnValue
    }
    if result == XenError.ENOSYS.returnValue { reportUnimplemented(v.domain, e.op, e.args.0) }
    return result
}
