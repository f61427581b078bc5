// The neighbours guest: many domains side by side, each paired with a neighbour by domain ID (`id` and
// `peer` in its arguments). The pair plays `rounds` of ping-pong over an interdomain event channel,
// each end waiting in SCHEDOP_block for the other's event; then both do timed work for `seconds` and
// report how much they did, and how long the hypervisor says they ran, in a window of time common to
// all (from `from` seconds after power-on: the counter is the machine's, the same in every domain), all
// of them busy before and after it so the load is the same throughout. Sixty-four of them on four CPUs
// test that, with many domains, no event is lost, every domain finishes and the CPUs are shared fairly.
import GuestKit
import GuestKitAsm
import TernCore

/// Events taken, by port (any port: the neighbour may send before this side has learnt its port
/// number from alloc_unbound); changed by the upcall only.
nonisolated(unsafe) var received: UnsafeMutablePointer<UInt64>!
var countedPorts: UInt32 { 64 }      // computed: a guest global is set up only when first used from guest_main
nonisolated(unsafe) var port: UInt32 = 0

func fail(_ message: StaticString) -> Never {
    print("neighbours: FAILED: \(message)")
    Xen.shutdown(.crash)
}

/// Waits (blocked, not spinning) until `count` events have arrived. Every 5 s without them it says
/// what it sees: a stuck pair shows whether the event is pending, masked or never came.
func waitFor(_ count: UInt64) {
    var deadline = Timer.ticks + 5 * Timer.frequency
    Timer.interruptTaken = false
    write_cntv_cval_el0(deadline)
    write_cntv_ctl_el0(1)
    while true {
        // Masked while checking, so the upcall cannot slip in between the check and the block.
        guest_irq_disable()
        if guest_load64(UInt64(UInt(bitPattern: received + Int(port)))) >= count {
            write_cntv_ctl_el0(0)
            guest_irq_enable()
            return
        }
        Xen.block()
        guest_irq_enable()
        if Timer.interruptTaken {
            print("neighbours: still waiting for event \(count) on port \(port): \(received[Int(port)]) taken, pending \(Events.isPending(port))")
            Timer.interruptTaken = false
            deadline += 5 * Timer.frequency
            write_cntv_cval_el0(deadline)
            write_cntv_ctl_el0(1)
        }
    }
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let me = args.integer("id", default: 0)
    let peer = args.integer("peer", default: 1)
    let rounds = UInt64(args.integer("rounds", default: 100))
    let seconds = UInt64(args.integer("seconds", default: 3))
    let from = UInt64(args.integer("from", default: 8)) * Timer.frequency
    received = .allocate(capacity: Int(countedPorts))
    received.initialize(repeating: 0, count: Int(countedPorts))
    Events.handler = { p in if p < countedPorts { received[Int(p)] += 1 } }
    interruptHandler = { intid in if intid == GuestLayout.eventChannelPPI { Events.upcall() } }
    Interrupts.start()
    guard Events.start() == 0, Events.registerThisVCPU() == 0 else { fail("no event channels") }

    let pingPongStart = Timer.milliseconds
    // The lower ID offers the channel; the higher binds it once it exists (at a low port number, which
    // only the port offered to it can be: a bind succeeds only for a port left unbound for this domain).
    if me < peer {
        guard case .success(let p) = Events.allocateUnbound(for: UInt16(peer)), p < countedPorts else { fail("alloc_unbound") }
        port = p
        // Our neighbour says it is there; then we serve first.
        waitFor(1)
        for round in 1 ... rounds {
            Events.send(port)
            waitFor(1 + round)
        }
    } else {
        var tries = 0
        search: while true {
            for remote: UInt32 in 1 ..< 16 {
                if case .success(let p) = Events.bindInterdomain(UInt16(peer), port: remote) {
                    if p >= countedPorts { fail("bound a port beyond those counted") }
                    port = p
                    break search
                }
            }
            tries += 1
            if tries > 100_000 { fail("the neighbour's port never appeared") }
            Xen.yield()
        }
        // Binding marks the new port pending, as Xen does (so no event sent before it is lost): one
        // event to take before the neighbour's pings.
        waitFor(1)
        Events.send(port)
        for round in 1 ... rounds {
            waitFor(1 + round)
            Events.send(port)
        }
    }

    let pingPongMs = Timer.milliseconds - pingPongStart
    if Timer.ticks >= from { fail("the ping-pong ended after the measured window began") }
    let end = from + seconds * Timer.frequency
    var work = Work()
    work.run(until: from)
    let ranBefore = Xen.ranNanoseconds()
    let units = work.run(until: end)
    guard let ranBefore, let ranAfter = Xen.ranNanoseconds(), ranAfter >= ranBefore else { fail("get_runstate_info") }
    let ranInWindow = ranAfter - ranBefore
    work.run(until: end + Timer.frequency / 2)
    print("neighbours: d\(me) with d\(peer): \(rounds) rounds in \(pingPongMs) ms, work=\(units) ran=\(ranInWindow / 1000) us check=\(work.state & 0xFF)")
    Xen.shutdown(.poweroff)
}

/// One vCPU only: a second would never be started.
@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    PSCI.stopThisVCPU()
}
