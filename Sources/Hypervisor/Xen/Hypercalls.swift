// Xen's hypercalls: `hvc #0xEA1`, number in x16, arguments in x0-x4, result in x0. Anything Tern does
// not implement answers -ENOSYS, as Xen does for hypercalls it was built without; bad arguments get
// Xen's error codes and never reach anything but the calling domain.
//
// The switch below is the hypercall table, one row per Xen number naming the interface's file. It is
// a switch rather than an array of handlers (Xen's hypercall_table) on purpose: the compiler makes it a
// jump table all the same, and a direct call lets xen_version's answer be inlined into the trap, where
// an indirect one could not (the null hypercall, 130 instructions, is mostly trap entry and exit).
import TernArch
import TernArchAsm
import TernCore

@inline(__always)
func hypercall(_ v: VCPU) -> Resume {
    let f = v.frame
    let result: UInt64
    switch f.pointee.x.16 {
    case Hypercall.xen_version.rawValue:
        result = xenVersion(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.console_io.rawValue:
        result = consoleIO(f.pointee.x.0, f.pointee.x.1, VirtualAddress(f.pointee.x.2), v)
    case Hypercall.sched_op.rawValue:
        return schedOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.vcpu_op.rawValue:
        result = vcpuOp(f.pointee.x.0, f.pointee.x.1, VirtualAddress(f.pointee.x.2), v)
    case Hypercall.event_channel_op.rawValue:
        result = eventChannelOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.memory_op.rawValue:
        result = memoryOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.grant_table_op.rawValue:
        result = grantTableOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), f.pointee.x.2, v)
    case Hypercall.hvm_op.rawValue:
        result = hvmOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.platform_op.rawValue:
        result = platformOp(VirtualAddress(f.pointee.x.0), v)
    case Hypercall.multicall.rawValue:
        result = multicall(VirtualAddress(f.pointee.x.0), f.pointee.x.1, v)
    case Hypercall.sysctl.rawValue:
        result = sysctl(VirtualAddress(f.pointee.x.0), v)
    case Hypercall.domctl.rawValue:
        result = domctl(VirtualAddress(f.pointee.x.0), v)
    case Hypercall.vm_assist.rawValue:
        result = vmAssist(f.pointee.x.0, f.pointee.x.1, v.domain)
    default:
        result = XenError.ENOSYS.returnValue
    }
    if result == XenError.ENOSYS.returnValue { reportUnimplemented(v.domain, f.pointee.x.16, f.pointee.x.0) }
    f.pointee.x.0 = result
    return f
}

/// Says once per domain which hypercall it wanted and did not get: the first thing to look at when a
/// guest misbehaves under Tern but not under Xen.
func reportUnimplemented(_ d: Domain, _ number: UInt64, _ argument: UInt64) {
    // platform_op, xsm_op, sysctl and domctl take one structure whose first field is the command;
    // multicall's first argument is its list.
    let inStructure = number == 7 || number == 27 || number == 35 || number == 36
    let command = number == 13 ? nil : inStructure ? GuestMemory.load32(VirtualAddress(argument)).map { UInt64($0) } : argument
    let key = number << 32 | (command ?? 0xFFFF_FFFF) & 0xFFFF_FFFF
    let first = d.reports.withLock { r in
        if r.keys.contains(key) || r.keys.count >= 32 { return false }
        r.keys.append(key)
        return true
    }
    guard first else { return }
    log { c in
        c.domain(d)
        c.s(": hypercall ")
        c.dec(number)
        if let command {
            c.s(" command ")
            c.dec(command)
        }
        c.s(" is not implemented (-ENOSYS)")
    }
}

/// What one hypercall does at EL2 at most before it lets the guest (and the scheduler) in again: the
/// rest is a continuation, as Xen makes one.
let consoleBytesPerCall: UInt64 = 1024

/// Xen's hypercall continuation on Arm: the call is made again, from its HVC, with `a1` and `a2` (what
/// is left of its batch) in place of x1 and x2. Returns what x0 must keep: the command.
func continueHypercall(_ v: VCPU, _ a1: UInt64, _ a2: UInt64) -> UInt64 {
    let f = v.frame
    f.pointee.x.1 = a1
    f.pointee.x.2 = a2
    f.pointee.elr &-= 4
    return f.pointee.x.0
}
