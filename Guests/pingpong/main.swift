// The ping-pong guest: two vCPUs hand a turn back and forth for `seconds`, each waiting for it in a
// hypercall that sleeps (SCHEDOP_block, SCHEDOP_poll, SCHEDOP_yield, PSCI CPU_SUSPEND) and waking the
// other with an event channel or an SGI. Every such call runs with x19-x29 filled with known values,
// checked when it returns: a vCPU resumed on another CPU before its registers were saved shows up as
// broken registers. Beside a busy domain both vCPUs keep changing CPUs.
// First it checks SCHEDOP_poll's ports: a pending port (even masked) ends a poll at once, an event on a
// masked port wakes a poller, and a poll with nothing to wake it lasts until its timeout.
import GuestKit
import GuestKitAsm
import TernCore

/// Shared between the vCPUs, reached through volatile loads and stores.
enum Slot: Int { case turn = 0, stop, ready, probePolled, rounds0, rounds1, broken0, broken1 }
/// Set up by vCPU 0 before vCPU 1 starts (a global's initializer would run lazily, on either of them).
nonisolated(unsafe) var shared: UnsafeMutablePointer<UInt64>!
nonisolated(unsafe) var ports: UnsafeMutablePointer<UInt32>!
nonisolated(unsafe) var waitsByKind: UnsafeMutablePointer<UInt64>!
let wakeSGI: UInt32 = 2

func load(_ s: Slot) -> UInt64 { guest_load64(UInt64(UInt(bitPattern: shared + s.rawValue))) }
func store(_ s: Slot, _ v: UInt64) {
    guest_barrier()
    guest_store64(UInt64(UInt(bitPattern: shared + s.rawValue)), v)
}
func add(_ s: Slot, _ v: UInt64) { store(s, load(s) &+ v) }

/// SCHEDOP_poll on one port with a timeout `ms` from now (0: none); returns (result, milliseconds taken).
func poll(_ port: UInt32, ms: UInt64) -> (Int64, UInt64) {
    var p = port
    let start = Timer.milliseconds
    let r = withUnsafeMutablePointer(to: &p) { pp in
        // struct sched_poll { evtchn_port_t *ports; unsigned int nr_ports; uint64_t timeout; }
        var request: (UInt64, UInt64, UInt64) = (UInt64(UInt(bitPattern: pp)), 1, ms == 0 ? 0 : Timer.nanoseconds + ms * 1_000_000)
        return Xen.call(.sched_op, SchedOpCommand.poll.rawValue, pointingTo: &request)
    }
    return (r, Timer.milliseconds - start)
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let seconds = UInt64(args.integer("seconds", default: 3))
    shared = .allocate(capacity: 8)
    shared.initialize(repeating: 0, count: 8)
    ports = .allocate(capacity: 3)
    waitsByKind = .allocate(capacity: 4)
    waitsByKind.initialize(repeating: 0, count: 4)
    interruptHandler = { intid in if intid == GuestLayout.eventChannelPPI { Events.upcall() } }
    Interrupts.start()
    Interrupts.enable(wakeSGI)
    guard Events.start() == 0, Events.registerThisVCPU() == 0,
          case .success(let p0) = Events.bindIPI(vcpu: 0), case .success(let p1) = Events.bindIPI(vcpu: 1),
          case .success(let probe) = Events.bindIPI(vcpu: 1) else {
        print("pingpong: FAILED to set up event channels")
        Xen.shutdown(.crash)
    }
    ports[0] = p0
    ports[1] = p1
    ports[2] = probe

    // A pending port ends a poll at once, masked or not.
    Events.mask(p0)
    Events.send(p0)
    let (pendingResult, pendingMs) = poll(p0, ms: 2000)
    print("pingpong: poll on a pending masked port returned \(pendingResult) after \(pendingMs) ms")
    Events.clear(p0)
    Events.unmask(p0)
    // Nothing pending, nothing sent: the timeout ends it.
    Events.mask(probe)
    let (timeoutResult, timeoutMs) = poll(probe, ms: 100)
    print("pingpong: poll with nothing to wake it returned \(timeoutResult) after \(timeoutMs) ms")

    let started = PSCI.startVCPU(1)
    guard started == 0 else {
        print("pingpong: FAILED to start vcpu1 (\(started))")
        Xen.shutdown(.crash)
    }
    // vCPU 1 polls the masked probe port; an event on it must wake it long before the poll's timeout.
    while load(.probePolled) == 0 { Xen.yield() }
    let sendAt = Timer.milliseconds + 100
    while Timer.milliseconds < sendAt {}
    Events.send(probe)
    while load(.ready) == 0 { Xen.yield() }

    let end = Timer.ticks + seconds * Timer.frequency
    var round: UInt64 = 0
    while true {
        waitForTurn(0, round)
        if Timer.ticks >= end { store(.stop, 1) }
        pass(from: 0, round)
        round += 1
        if load(.stop) != 0 { break }
    }
    while PSCI.isOn(1) { Xen.yield() }
    let rounds = load(.rounds0) + load(.rounds1)
    print("pingpong: \(rounds) turns in \(seconds) s, waits block=\(waitsByKind[0]) poll=\(waitsByKind[1]) yield=\(waitsByKind[2]) suspend=\(waitsByKind[3])")
    print("pingpong: broken registers \(load(.broken0) + load(.broken1))")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    Interrupts.start()
    Interrupts.enable(wakeSGI)
    guard Events.registerThisVCPU() == 0 else {
        print("pingpong: FAILED to register vcpu1's vcpu_info")
        PSCI.stopThisVCPU()
    }
    store(.probePolled, 1)
    let (result, ms) = poll(ports[2], ms: 3000)
    print("pingpong: poll on a masked port woke after \(ms) ms (\(result))")
    Events.clear(ports[2])
    store(.ready, 1)
    var round: UInt64 = 0
    while true {
        waitForTurn(1, round)
        if load(.stop) != 0 { break }
        pass(from: 1, round)
        round += 1
    }
    PSCI.stopThisVCPU()
}

/// Sleeps until it is `me`'s turn, in this round's kind of sleep, checking x19-x29 across every call.
func waitForTurn(_ me: UInt64, _ round: UInt64) {
    let kind = Int(round % 4)
    let seed = me << 60 | round << 8
    guest_irq_disable()
    while load(.turn) != me {
        var broken: UInt64 = 0
        switch kind {
        case 0:
            _ = guest_hypercall_checked(SchedOpCommand.block.rawValue, 0, 0, Hypercall.sched_op.rawValue, seed, &broken)
        case 1:
            var port = ports[Int(me)]
            withUnsafeMutablePointer(to: &port) { pp in
                var request: (UInt64, UInt64, UInt64) = (UInt64(UInt(bitPattern: pp)), 1, Timer.nanoseconds + 50_000_000)
                withUnsafeMutablePointer(to: &request) { rp in
                    _ = guest_hypercall_checked(SchedOpCommand.poll.rawValue, UInt64(UInt(bitPattern: rp)), 0,
                                                Hypercall.sched_op.rawValue, seed, &broken)
                }
            }
        case 2:
            _ = guest_hypercall_checked(SchedOpCommand.yield.rawValue, 0, 0, Hypercall.sched_op.rawValue, seed, &broken)
        default:
            // CPU_SUSPEND with a standby power state: back here once an interrupt is pending.
            _ = guest_hvc0_checked(UInt64(PSCIFunction.cpu_suspend.rawValue), 0, 0, 0, seed, &broken)
        }
        waitsByKind[kind] &+= 1
        add(me == 0 ? .broken0 : .broken1, broken)
        guest_irq_enable()          // whatever woke us is taken here
        guest_irq_disable()
    }
    guest_irq_enable()
}

/// Gives the turn to the other vCPU and wakes it, by event channel or SGI in turn.
func pass(from me: UInt64, _ round: UInt64) {
    let other = 1 - me
    add(me == 0 ? .rounds0 : .rounds1, 1)
    store(.turn, other)
    if round % 2 == 0 {
        var port = ports[Int(other)]
        var broken: UInt64 = 0
        withUnsafeMutablePointer(to: &port) { pp in
            _ = guest_hypercall_checked(EventChannelOpCommand.send.rawValue, UInt64(UInt(bitPattern: pp)), 0,
                                        Hypercall.event_channel_op.rawValue, me << 60 | 0xFF, &broken)
        }
        add(me == 0 ? .broken0 : .broken1, broken)
    } else {
        Interrupts.send(wakeSGI, toVCPU: Int(other))
    }
}
