import Testing
@testable import TernCore

/// sched_op's requests as a guest makes them, hostile ones included, without a boot.
@Suite struct SchedOpTests {
    private let arg: UInt64 = 0x8000_0000
    private let portList: UInt64 = 0x8000_1000

    private func decode(_ command: SchedOpCommand, _ memory: inout FakeGuestMemory) -> Result<SchedOp.Request, XenError> {
        SchedOp.decode(command.rawValue, VirtualAddress(arg), &memory)
    }

    /// A poll's request and then its ports, as the hypervisor reads them.
    private func poll(_ memory: inout FakeGuestMemory, portLimit: UInt32 = 4096) -> Result<[EventPort], XenError> {
        switch decode(.poll, &memory) {
        case .success(.poll(let request)): SchedOp.ports(of: request, &memory, portLimit: portLimit)
        case .success: .failure(.ENOSYS)
        case .failure(let error): .failure(error)
        }
    }

    private func pollRequest(_ ports: [UInt32], timeout: UInt64 = 0, count: UInt32? = nil) -> FakeGuestMemory {
        var memory = FakeGuestMemory()
        memory.map(arg)
        memory.map(portList)
        var poll = SchedPoll()
        poll.ports = portList
        poll.portCount = count ?? UInt32(ports.count)
        poll.timeout = timeout
        _ = memory.write(poll, to: VirtualAddress(arg))
        for (i, p) in ports.enumerated() { _ = memory.write(p, to: VirtualAddress(portList + UInt64(i) * 4)) }
        return memory
    }

    @Test func theStructuresAreLaidOutAsSchedH() {
        #expect(MemoryLayout<SchedShutdown>.size == 4)
        #expect(MemoryLayout<SchedPoll>.size == 24)
        #expect(MemoryLayout<SchedPoll>.offset(of: \.portCount) == 8)
        #expect(MemoryLayout<SchedPoll>.offset(of: \.timeout) == 16)
        #expect(MemoryLayout<SchedWatchdog>.size == 8)
        #expect(MemoryLayout<SchedWatchdog>.offset(of: \.timeout) == 4)
    }

    @Test func yieldAndBlockTakeNoArgument() {
        var memory = FakeGuestMemory()
        #expect(decode(.yield, &memory) == .success(.yield))
        #expect(decode(.block, &memory) == .success(.block))
        #expect(SchedOp.decode(99, VirtualAddress(arg), &memory) == .failure(.ENOSYS))
        #expect(decode(.remote_shutdown, &memory) == .failure(.ENOSYS))
    }

    @Test func shutdownNamesAReasonXenKnows() {
        var memory = FakeGuestMemory()
        #expect(decode(.shutdown, &memory) == .failure(.EFAULT))
        memory.map(arg)
        _ = memory.write(UInt32(3), to: VirtualAddress(arg))
        #expect(decode(.shutdown, &memory) == .success(.shutdown(.crash)))
        _ = memory.write(UInt32(5), to: VirtualAddress(arg))
        #expect(decode(.shutdown, &memory) == .failure(.EINVAL))   // soft_reset: no toolstack to do it
    }

    @Test func pollReadsItsPortsAndTimeout() {
        var memory = pollRequest([3, 7], timeout: 5000)
        #expect(poll(&memory) == .success([3, 7]))
        guard case .success(.poll(let request)) = decode(.poll, &memory) else {
            Issue.record("not a poll")
            return
        }
        #expect(request.timeout == 5000 && request.portCount == 2)
        memory = pollRequest([], timeout: 0)
        #expect(poll(&memory) == .success([]))
        guard case .success(.poll(let forever)) = decode(.poll, &memory) else {
            Issue.record("not a poll")
            return
        }
        #expect(forever.deadline == nil && request.deadline == 5000)      // 0: no timeout
        // A list need not be aligned.
        var unaligned = FakeGuestMemory()
        unaligned.map(arg)
        unaligned.map(portList)
        var offCut = SchedPoll()
        (offCut.ports, offCut.portCount) = (portList + 2, 2)
        _ = unaligned.write(offCut, to: VirtualAddress(arg))
        _ = unaligned.write(UInt32(9), to: VirtualAddress(portList + 2))
        _ = unaligned.write(UInt32(4), to: VirtualAddress(portList + 6))
        #expect(poll(&unaligned) == .success([9, 4]))
    }

    /// The hostile guest's poll requests: too many ports, a port beyond the domain's, a list that is
    /// not there (whole or in part), an argument that is not there.
    @Test func aBadPollIsRefusedWithXensCodes() {
        var memory = pollRequest([], count: 129)
        #expect(poll(&memory) == .failure(.EINVAL))
        memory = pollRequest([1, 4096])
        #expect(poll(&memory) == .failure(.EINVAL))
        memory = pollRequest([1, 5], count: 2000)           // would run off the list's page,
        #expect(poll(&memory) == .failure(.EINVAL))         // but over 128 is checked first
        memory = pollRequest([1, 5], count: 128)
        #expect(poll(&memory, portLimit: 8) == .success([1, 5] + [EventPort](repeating: .none, count: 126)))
        var unmapped = FakeGuestMemory()
        #expect(poll(&unmapped) == .failure(.EFAULT))
        // The list crosses into a page with nothing behind it.
        var crossing = FakeGuestMemory()
        crossing.map(arg)
        crossing.map(portList)
        var request = SchedPoll()
        request.ports = portList + 4096 - 8
        request.portCount = 4
        _ = crossing.write(request, to: VirtualAddress(arg))
        #expect(poll(&crossing) == .failure(.EFAULT))
    }

    @Test func watchdogPassesItsIDAndTimeout() {
        var memory = FakeGuestMemory()
        #expect(decode(.watchdog, &memory) == .failure(.EFAULT))
        memory.map(arg)
        var w = SchedWatchdog()
        w.id = 2
        w.timeout = 30
        _ = memory.write(w, to: VirtualAddress(arg))
        #expect(decode(.watchdog, &memory) == .success(.watchdog(id: 2, timeout: 30)))
    }
}

/// SCHEDOP_poll's protocol against a fake vCPU: the announcement comes before any look at the ports,
/// and a poll that returns at once ends its polling; one that sleeps leaves that to its waker.
@Suite struct SchedPollTests {
    final class Host: SchedPollHost {
        var pending: Set<EventPort> = []
        var interruptWaiting = false
        var calls: [String] = []
        func beginPolling(only port: EventPort?) { calls.append("begin \(port.map { String($0.raw) } ?? "several")") }
        func isPending(_ port: EventPort) -> Bool {
            calls.append("look \(port.raw)")
            return pending.contains(port)
        }
        func sleep(until deadline: Nanoseconds?) -> Bool {
            calls.append("sleep \(deadline.map { String($0.raw) } ?? "forever")")
            return !interruptWaiting
        }
        func endPolling() { calls.append("end") }
    }

    let clock = FakeClock(1_000)

    @Test func aPendingPortReturnsAtOnce() {
        let host = Host()
        host.pending = [7]
        #expect(SchedOp.poll([3, 7, 9], until: nil, host, clock: clock) == .returnNow)
        #expect(host.calls == ["begin several", "look 3", "look 7", "end"])
    }

    @Test func nothingPendingSleepsUntilTheTimeout() {
        let host = Host()
        #expect(SchedOp.poll([5], until: 2_000, host, clock: clock) == .sleeps)
        #expect(host.calls == ["begin 5", "look 5", "sleep 2000"])     // its waker ends the polling
        let forever = Host()
        #expect(SchedOp.poll([], until: nil, forever, clock: clock) == .sleeps)
        #expect(forever.calls == ["begin several", "sleep forever"])
    }

    /// A timeout already passed returns 0 at once, as Xen's timer would fire at once: no polling, no
    /// sleep, no look at the ports. One still ahead is the sleep's deadline.
    @Test func aTimeoutInThePastReturnsAtOnce() {
        let host = Host()
        #expect(SchedOp.poll([5], until: 5_000, host, clock: FakeClock(5_000)) == .returnNow)
        #expect(SchedOp.poll([5], until: 4_999, host, clock: FakeClock(5_000)) == .returnNow)
        #expect(host.calls.isEmpty)
        #expect(SchedOp.poll([5], until: 5_001, host, clock: FakeClock(5_000)) == .sleeps)
        #expect(host.calls == ["begin 5", "look 5", "sleep 5001"])
        let forever = Host()
        #expect(SchedOp.poll([5], until: nil, forever, clock: FakeClock(.never)) == .sleeps)
    }

    @Test func aWaitingInterruptReturnsAtOnce() {
        let host = Host()
        host.interruptWaiting = true
        #expect(SchedOp.poll([4, 6], until: nil, host, clock: clock) == .returnNow)
        #expect(host.calls == ["begin several", "look 4", "look 6", "sleep forever", "end"])
    }

    /// Port 0 is "no port": a poll of it alone waits for any event, as one of several ports does.
    @Test func whoAnEventWakes() {
        let host = Host()
        _ = SchedOp.poll([0], until: nil, host, clock: clock)
        #expect(host.calls.first == "begin several")
        #expect(SchedOp.pollerWakes(polling: 5, fired: 5))
        #expect(!SchedOp.pollerWakes(polling: 5, fired: 6))
        #expect(SchedOp.pollerWakes(polling: nil, fired: 6))
    }
}
