// sched_op's arguments (xen/include/public/sched.h), read and checked before the hypervisor acts: what
// the caller asked for, or Xen's error code for a bad request. What follows (giving up the CPU,
// sleeping, ending the domain) is the scheduler's; the watchdogs' rules are Watchdogs'.

/// struct sched_shutdown { unsigned int reason; }
public struct SchedShutdown {
    public var reason: UInt32 = 0
    public init() {}
}

/// struct sched_poll { XEN_GUEST_HANDLE(evtchn_port_t) ports; unsigned int nr_ports; uint64_t timeout; }
public struct SchedPoll: Equatable {
    public var ports: UInt64 = 0
    public var portCount: UInt32 = 0
    public var padding: UInt32 = 0
    /// Xen system time (nanoseconds since boot) to give up at; 0 = never.
    public var timeout: UInt64 = 0
    public init() {}
}

/// struct sched_watchdog { uint32_t id; uint32_t timeout; }: timeout in seconds, 0 stops; id 0 asks
/// for a new one.
public struct SchedWatchdog {
    public var id: UInt32 = 0
    public var timeout: UInt32 = 0
    public init() {}
}

extension SchedPoll {
    /// When the poll gives up; nil: never.
    @inlinable public var deadline: Nanoseconds? { timeout == 0 ? nil : Nanoseconds(timeout) }
}

public enum SchedOp {
    /// Xen's limit on the ports one SCHEDOP_poll may name (do_poll: nr_ports > 128 is -EINVAL).
    public static let maximumPolledPorts: UInt32 = 128

    /// What the caller asked. Plain values only, so the yield on the measured switch path carries
    /// nothing to copy or free; poll's ports are read by `ports(of:)`.
    public enum Request: Equatable {
        case yield
        case block
        /// Sleep until one of its ports is pending, an interrupt arrives or its timeout passes (its
        /// count is checked).
        case poll(SchedPoll)
        case watchdog(id: UInt32, timeout: UInt32)
        case shutdown(ShutdownReason)
    }

    /// Reads and checks `command`'s argument at `arg`.
    @inline(__always)
    public static func decode<Memory: GuestMemoryAccess>(
        _ command: UInt64, _ arg: VirtualAddress, _ memory: inout Memory
    ) -> Result<Request, XenError> {
        switch command {
        case SchedOpCommand.yield.rawValue:
            return .success(.yield)
        case SchedOpCommand.block.rawValue:
            return .success(.block)
        case SchedOpCommand.shutdown.rawValue:
            var request = SchedShutdown()
            guard memory.read(&request, from: arg) else { return .failure(.EFAULT) }
            // Xen hands any reason to its toolstack; Tern has nobody to decide about one it does not
            // know (soft_reset, 5, among them), so it refuses it.
            guard let reason = ShutdownReason(rawValue: request.reason) else { return .failure(.EINVAL) }
            return .success(.shutdown(reason))
        case SchedOpCommand.poll.rawValue:
            var request = SchedPoll()
            guard memory.read(&request, from: arg) else { return .failure(.EFAULT) }
            guard request.portCount <= maximumPolledPorts else { return .failure(.EINVAL) }
            return .success(.poll(request))
        case SchedOpCommand.watchdog.rawValue:
            var request = SchedWatchdog()
            guard memory.read(&request, from: arg) else { return .failure(.EFAULT) }
            return .success(.watchdog(id: request.id, timeout: request.timeout))
        default:
            return .failure(.ENOSYS)
        }
    }

    /// The ports a poll names, each checked against the `portLimit` ports the domain has as it is read
    /// (a list need not be aligned, as Xen copies it). Unlike Xen's do_poll, which returns 0 at the
    /// first pending port without reading the rest, every port is read and checked before any is
    /// looked at: the hypervisor looks only after it has announced the poller.
    public static func ports<Memory: GuestMemoryAccess>(
        of poll: SchedPoll, _ memory: inout Memory, portLimit: UInt32
    ) -> Result<[EventPort], XenError> {
        var ports: [EventPort] = []
        ports.reserveCapacity(Int(poll.portCount))
        for i in 0 ..< UInt64(poll.portCount) {
            var port: UInt32 = 0
            guard memory.read(&port, from: VirtualAddress(poll.ports &+ i * 4)) else { return .failure(.EFAULT) }
            guard port < portLimit else { return .failure(.EINVAL) }
            ports.append(EventPort(port))
        }
        return .success(ports)
    }
}

/// What SCHEDOP_poll needs from the hypervisor, for the calling vCPU; every call is made with its
/// run queue's lock held (which guards its poll state).
public protocol SchedPollHost {
    /// The vCPU polls `only` that port (nil: several, or none). Visible to senders, with a full barrier,
    /// before any port is looked at: a sender looks for pollers after setting its port pending, so one
    /// of the two sees the other, and no event slips between the look and the sleep.
    func beginPolling(only port: EventPort?)
    /// Whether `port` is pending (masked or not) in whichever event ABI the domain uses.
    func isPending(_ port: EventPort) -> Bool
    /// Puts the vCPU to sleep until an event on a polled port, an interrupt or `deadline` (Xen system
    /// time; nil: none). False when an interrupt already waits for it: it carries on at once.
    func sleep(until deadline: Nanoseconds?) -> Bool
    /// The vCPU no longer polls.
    func endPolling()
}

extension SchedOp {
    public enum PollOutcome: Equatable, Sendable {
        /// Return 0 to the guest now: a port was pending, or an interrupt waits.
        case returnNow
        /// The vCPU sleeps; it leaves the CPU, and whoever wakes it ends its polling.
        case sleeps
    }

    /// SCHEDOP_poll with its ports read and checked, as Xen's do_poll: returns at once when one of
    /// them is already pending, an interrupt waits for the vCPU or `deadline` (nil: none) has passed
    /// on `clock` (Xen's timer would fire at once), else sleeps until one becomes pending, an
    /// interrupt arrives or the deadline passes.
    public static func poll<Host: SchedPollHost, Time: Clock>(
        _ ports: [EventPort], until deadline: Nanoseconds?, _ host: Host, clock: Time) -> PollOutcome {
        if let deadline, deadline <= clock.now() { return .returnNow }
        host.beginPolling(only: ports.count == 1 && ports[0] != .none ? ports[0] : nil)
        // A plain loop: `contains(where:)` with this closure crashes the embedded compiler (6.3).
        var pending = false
        for port in ports where host.isPending(port) {
            pending = true
            break
        }
        if pending || !host.sleep(until: deadline) {
            host.endPolling()
            return .returnNow
        }
        return .sleeps
    }

    /// Xen's evtchn_check_pollers: a vCPU polling `polled` (nil: several ports) is woken by an event on
    /// `fired`, masked or not.
    @inlinable public static func pollerWakes(polling polled: EventPort?, fired: EventPort) -> Bool {
        polled == nil || polled == fired
    }
}
