// sched_op: a vCPU gives up its CPU (yield), sleeps until an interrupt (block) or an event on given
// ports (poll), arms a watchdog, or ends its domain (shutdown).
import Synchronization
import TernArch
import TernArchAsm
import TernCore

func schedOp(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> Resume {
    // The yield is on the measured switch path and takes no argument: the rest, which make room for
    // theirs, are out of its way.
    guard command == SchedOpCommand.yield.rawValue else { return schedOpRequest(command, arg, v) }
    v.frame.pointee.x.0 = 0
    return yield()
}

private func yield() -> Resume {
    let p = thisCPUIndex()
    lockRunQueue(p)
    scheduler.yield(pcpu: p, now: now())
    return leaveCPU()
}

@inline(never) private func schedOpRequest(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> Resume {
    let f = v.frame
    var memory = RunningGuestMemory()
    switch SchedOp.decode(command, arg, &memory) {
    case .failure(let error):
        f.pointee.x.0 = error.returnValue
        return f
    case .success(.yield):
        f.pointee.x.0 = 0
        return yield()
    case .success(.block):
        f.pointee.x.0 = 0
        let p = thisCPUIndex()
        lockRunQueue(p)
        if !blockCurrent(v, reason: .schedBlock) {
            unlockRunQueue(p)
            return f
        }
        return leaveCPU()
    case .success(.poll(let request)):
        switch SchedOp.ports(of: request, &memory, portLimit: UInt32(EventChannelTable.maximumPorts)) {
        case .failure(let error):
            f.pointee.x.0 = error.returnValue
            return f
        case .success(let ports):
            f.pointee.x.0 = 0
            return poll(v, ports, until: request.deadline)
        }
    case .success(.watchdog(let id, let timeout)):
        f.pointee.x.0 = watchdogCommand(v, id: id, timeout: timeout)
        return f
    case .success(.shutdown(let reason)):
        f.pointee.x.0 = 0
        lockScheduler()
        shutdownDomain(v.domain, reason: reason, via: "SCHEDOP_shutdown")
        return leaveCPU()
    }
}

/// VCPU.pollPort when the vCPU is not polling.
let notPolling: Int32 = .min

/// SCHEDOP_poll: TernCore's SchedOp.poll decides, under this CPU's run-queue lock, with the vCPU as its host.
private func poll(_ v: VCPU, _ ports: [EventPort], until deadline: Nanoseconds?) -> Resume {
    let p = thisCPUIndex()
    lockRunQueue(p)
    switch SchedOp.poll(ports, until: deadline, v, clock: SystemClock()) {
    case .returnNow:
        unlockRunQueue(p)
        return v.frame
    case .sleeps:
        return leaveCPU()
    }
}

extension VCPU: SchedPollHost {
    func beginPolling(only port: EventPort?) {
        pollPort = port.map { Int32(bitPattern: $0.raw) } ?? -1
        domain.pollers.wrappingAdd(1, ordering: .sequentiallyConsistent)
        tern_memory_barrier()
    }

    func isPending(_ port: EventPort) -> Bool { isPortPending(domain, port) }

    func sleep(until deadline: Nanoseconds?) -> Bool { blockCurrent(self, reason: .poll, pollDeadline: deadline ?? .never) }

    func endPolling() { stopPolling(self) }
}

/// Whether `port` of `d` is pending in whichever ABI the domain uses.
private func isPortPending(_ d: Domain, _ port: EventPort) -> Bool {
    if let pending = withFIFO(d, { _, memory in memory.hasWord(port) && memory.loadWord(port) & FIFOEventWord.pending != 0 }) {
        return pending
    }
    guard let shared = d.events.withLock({ $0.sharedInfo }) else { return false }
    return tern_test_bit((shared + UInt64(SharedInfoLayout.evtchnPending)).raw, port.raw) != 0
}

/// The vCPU no longer polls (it returns, or was woken). Under its run queue's lock.
func stopPolling(_ v: VCPU) {
    guard v.pollPort != notPolling else { return }
    v.pollPort = notPolling
    v.domain.pollers.wrappingSubtract(1, ordering: .sequentiallyConsistent)
}

/// Xen's evtchn_check_pollers: `port` of `d` has just been made pending; a vCPU polling it (or polling
/// several ports) wakes, whether the port is masked or not. One load when nobody polls: an ordered load
/// (LDAR), which the atomic that set the port pending cannot pass, as the poller's barrier keeps its
/// count ahead of its look at the ports.
@inline(__always) func wakePollers(_ d: Domain, _ port: EventPort) {
    if d.pollers.load(ordering: .acquiring) != 0 { wakePollersOf(d, port) }
}

/// Each vCPU's poll state is under its own run queue's lock: one at a time.
@inline(never) private func wakePollersOf(_ d: Domain, _ port: EventPort) {
    for v in d.vcpus {
        let home = lockHome(v)
        if v.blocked == .poll
            && SchedOp.pollerWakes(polling: v.pollPort == -1 ? nil : EventPort(UInt32(bitPattern: v.pollPort)), fired: port) {
            wake(v)
        }
        unlockRunQueue(home)
    }
}
