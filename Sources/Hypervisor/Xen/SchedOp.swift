// sched_op: a vCPU gives up its CPU (yield), sleeps until an interrupt (block) or an event on given
// ports (poll), arms a watchdog, or ends its domain (shutdown).
import TernArch
import TernArchAsm
import TernCore

func schedOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> Resume {
    let f = v.frame
    switch command {
    case SchedOpCommand.yield.rawValue:
        f.pointee.x.0 = 0
        lockScheduler()
        scheduler.yield(pcpu: thisCPUIndex(), now: now())
        return leaveCPU()
    case SchedOpCommand.block.rawValue:
        f.pointee.x.0 = 0
        lockScheduler()
        if !blockCurrent(v, reason: .schedBlock) {
            unlockScheduler()
            return f
        }
        return leaveCPU()
    case SchedOpCommand.poll.rawValue:
        return poll(v, arg)
    case SchedOpCommand.watchdog.rawValue:
        // struct sched_watchdog { uint32_t id; uint32_t timeout; }
        var request = (UInt32(0), UInt32(0))
        f.pointee.x.0 = GuestMemory.read(&request, from: arg)
            ? watchdogCommand(v, id: request.0, timeout: request.1) : XenError.EFAULT.returnValue
        return f
    case SchedOpCommand.shutdown.rawValue:
        guard let raw = GuestMemory.load32(arg) else {
            f.pointee.x.0 = XenError.EFAULT.returnValue
            return f
        }
        guard let reason = ShutdownReason(rawValue: raw) else {
            f.pointee.x.0 = XenError.EINVAL.returnValue
            return f
        }
        f.pointee.x.0 = 0
        lockScheduler()
        shutdownDomain(v.domain, reason: reason, via: "SCHEDOP_shutdown")
        return leaveCPU()
    default:
        f.pointee.x.0 = XenError.ENOSYS.returnValue
        return f
    }
}

/// VCPU.pollPort when the vCPU is not polling.
let notPolling: Int32 = .min

/// Xen's limit on the ports one SCHEDOP_poll may name.
private let maximumPolledPorts: UInt32 = 128

/// SCHEDOP_poll, as Xen's do_poll: returns at once when one of the ports is already pending (masked or
/// not) or an interrupt waits for the vCPU, else sleeps until one of the ports becomes pending (even
/// masked: see wakePollers), an interrupt arrives, or the timeout (Xen system time; 0 = none) passes.
/// struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports; unsigned int nr_ports; uint64_t timeout; }
private func poll(_ v: VCPU, _ arg: VirtualAddress) -> Resume {
    let f = v.frame
    let d = v.domain
    var request = (UInt64(0), UInt64(0), UInt64(0))
    guard GuestMemory.read(&request, from: arg) else {
        f.pointee.x.0 = XenError.EFAULT.returnValue
        return f
    }
    let count = UInt32(truncatingIfNeeded: request.1)
    guard count <= maximumPolledPorts else {
        f.pointee.x.0 = XenError.EINVAL.returnValue
        return f
    }
    var ports: [UInt32] = []
    ports.reserveCapacity(Int(count))
    for i in 0 ..< UInt64(count) {
        guard let port = GuestMemory.load32(VirtualAddress(request.0) + i * 4) else {
            f.pointee.x.0 = XenError.EFAULT.returnValue
            return f
        }
        guard port < UInt32(EventChannelTable.maximumPorts) else {
            f.pointee.x.0 = XenError.EINVAL.returnValue
            return f
        }
        ports.append(port)
    }
    let timeout = request.2
    f.pointee.x.0 = 0
    if timeout != 0 && timeout <= now() { return f }
    lockScheduler()
    // Announced before the ports are looked at, and a sender looks for pollers after setting a port
    // pending: one of the two sees the other, so no event slips between the look and the sleep.
    v.pollPort = count == 1 && ports[0] != 0 ? Int32(ports[0]) : -1
    d.pollers += 1
    tern_memory_barrier()
    if ports.contains(where: { isPending(d, $0) })
        || !blockCurrent(v, reason: .poll, pollDeadline: timeout == 0 ? .max : timeout) {
        stopPolling(v)
        unlockScheduler()
        return f
    }
    return leaveCPU()
}

/// Whether `port` of `d` is pending in whichever ABI the domain uses.
private func isPending(_ d: Domain, _ port: UInt32) -> Bool {
    if let pending = withFIFO(d, { _, memory in memory.hasWord(port) && memory.loadWord(port) & FIFOEventWord.pending != 0 }) {
        return pending
    }
    guard let shared = d.events.withLock({ $0.sharedInfo }) else { return false }
    return tern_test_bit((shared + UInt64(SharedInfoLayout.evtchnPending)).raw, port) != 0
}

/// The vCPU no longer polls (it returns, or was woken). Under the scheduler lock.
func stopPolling(_ v: VCPU) {
    guard v.pollPort != notPolling else { return }
    v.pollPort = notPolling
    v.domain.pollers -= 1
}

/// Xen's evtchn_check_pollers: `port` of `d` has just been made pending; a vCPU polling it (or polling
/// several ports) wakes, whether the port is masked or not. One load when nobody polls: an ordered load
/// (LDAR), which the atomic that set the port pending cannot pass, as the poller's barrier keeps its
/// count ahead of its look at the ports.
@inline(__always) func wakePollers(_ d: Domain, _ port: UInt32) {
    let pollers = withUnsafeMutablePointer(to: &d.pollers) { tern_load_ordered64(UInt64(UInt(bitPattern: $0))) }
    if pollers != 0 { wakePollersOf(d, port) }
}

@inline(never) private func wakePollersOf(_ d: Domain, _ port: UInt32) {
    lockScheduler()
    for v in d.vcpus where v.blocked == .poll && (v.pollPort == -1 || v.pollPort == Int32(port)) {
        wake(v)
    }
    unlockScheduler()
}
