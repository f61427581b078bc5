// The canary: the domain that must notice if anything the fuzzers do reaches beyond them. With
// role=canary it fills part of its RAM from a seed and checks it, counts its timer ticks, and plays
// event-channel round trips with its partner (role=partner, the control domain), without end; once a
// second it says what it saw. Memory that changed, a round trip with no answer for 5 s, or a timer that
// stops ticking is an ANOMALY line, which fails the fuzzing run. The harness stops the machine.
import GuestKit
import GuestKitAsm
import TernCore

nonisolated(unsafe) var received: UInt64 = 0
nonisolated(unsafe) var port: UInt32 = 0

func fail(_ message: StaticString) -> Never {
    print("canary: FAILED: \(message)")
    Xen.shutdown(.crash)
}

func receivedCount() -> UInt64 { guest_load64(UInt64(UInt(bitPattern: withUnsafeMutablePointer(to: &received) { $0 }))) }

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let peer = UInt16(args.integer("peer", default: 0))
    Events.handler = { _ in received &+= 1 }
    interruptHandler = { intid in if intid == GuestLayout.eventChannelPPI { Events.upcall() } }
    Interrupts.start()
    guard Events.start() == 0, Events.registerThisVCPU() == 0 else { fail("no event channels") }
    if args.text("role", default: "canary") == "partner" {
        partner(peer)
    } else {
        canary(peer, memoryBytes: args.memoryBytes, seed: UInt64(args.integer("seed", default: 7)))
    }
}

/// Answers every event with one, for ever.
func partner(_ peer: UInt16) -> Never {
    guard case .success(let p) = Events.allocateUnbound(for: peer) else { fail("alloc_unbound") }
    port = p
    print("canary: partner offers port \(p) to d\(peer)")
    var answered: UInt64 = 0
    while true {
        guest_irq_disable()
        if receivedCount() == answered { Xen.block() }
        guest_irq_enable()
        while answered < receivedCount() {
            answered += 1
            Events.send(port)
        }
    }
}

/// The part of RAM it watches: 2 MiB, from 8 MiB into its RAM (past its image and heap).
let watchedOffset: UInt64 = 8 << 20
let watchedWords: UInt64 = (2 << 20) / 8

func pattern(_ seed: UInt64, _ i: UInt64) -> UInt64 {
    var z = seed &+ i &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    return z ^ (z >> 31)
}

func canary(_ peer: UInt16, memoryBytes: UInt64, seed: UInt64) -> Never {
    guard memoryBytes >= 16 << 20 else { fail("needs at least 16 MiB") }
    let watched = GuestLayout.ram.raw + watchedOffset
    for i in 0 ..< watchedWords { guest_store64(watched + i * 8, pattern(seed, i)) }
    // Binding leaves our new port pending (as Xen does): that event is the first to wait for, and
    // it may be taken before the bind call even returns.
    var want = receivedCount() + 1
    var bound = false
    for _ in 0 ..< 100_000 where !bound {
        for remote: UInt32 in 1 ..< 16 {
            if case .success(let p) = Events.bindInterdomain(peer, port: remote) {
                port = p
                bound = true
                break
            }
        }
        if !bound { Xen.yield() }
    }
    guard bound else { fail("the partner's port never appeared") }
    print("canary: bound to d\(peer)")

    let tick = Timer.frequency / 100                    // 10 ms
    let start = Timer.ticks
    var nextTick = start + tick, nextReport = start + Timer.frequency
    var ticks: UInt64 = 0, rounds: UInt64 = 0, longestTick: UInt64 = 0, lastTick = start
    var longestRound: UInt64 = 0, totalRound: UInt64 = 0, checks: UInt64 = 0, anomalies: UInt64 = 0
    // The same since the last report, for those who look at a stretch of the run (tern bench).
    var lastLongest: UInt64 = 0, lastTotal: UInt64 = 0, lastRounds: UInt64 = 0

    /// Sleeps until `want` events have come, or with `untilTick` until the next tick: only the timer's
    /// interrupt is a tick, so a timer that stops is seen (each sleep is also bounded by a poll's
    /// timeout of 1 s, so a lost wake-up is seen too). Says once if the events have not come after
    /// 5 s, and once a stall if no tick came for 5 s on two looks in a row (the first may be a wake-up
    /// whose interrupt is on its way after a long pause of the host).
    func wait(for want: UInt64, untilTick: Bool) {
        let deadline = Timer.ticks + 5 * Timer.frequency
        var reportedSilence = false, reportedStall = false, stallSeen = false
        while true {
            // A tick taken outside the wait (during a send or the memory check) is counted before the
            // timer is armed again, so it is not armed twice for the same tick.
            if !Timer.interruptTaken {
                write_cntv_cval_el0(nextTick)
                write_cntv_ctl_el0(1)
                guest_irq_disable()
                if !Timer.interruptTaken && (untilTick || receivedCount() < want) {
                    Xen.poll(until: Timer.nanoseconds + 1_000_000_000)
                }
                guest_irq_enable()
            }
            let now = Timer.ticks
            if Timer.interruptTaken {
                Timer.interruptTaken = false
                ticks += 1
                longestTick = max(longestTick, now - lastTick)
                lastTick = now
                nextTick = now + tick
                reportedStall = false
                stallSeen = false
                if untilTick { return }
            } else if now - lastTick > 5 * Timer.frequency && !reportedStall {
                if stallSeen {
                    anomalies += 1
                    reportedStall = true
                    print("canary: ANOMALY no timer tick for 5 s")
                }
                stallSeen = true
            }
            if !untilTick && receivedCount() >= want { return }
            if !untilTick && now >= deadline && !reportedSilence {
                anomalies += 1
                reportedSilence = true
                print("canary: ANOMALY no answer from d\(peer) for 5 s (round \(rounds + 1))")
            }
        }
    }

    wait(for: want, untilTick: false)
    while true {
        // One round trip a tick: the canary watches, it does not compete with the fuzzers.
        wait(for: 0, untilTick: true)
        let sent = Timer.ticks
        want = receivedCount() + 1
        Events.send(port)
        wait(for: want, untilTick: false)
        let took = Timer.ticks - sent
        longestRound = max(longestRound, took)
        totalRound += took
        rounds += 1
        lastLongest = max(lastLongest, took)
        lastTotal += took
        lastRounds += 1

        if Timer.ticks >= nextReport {
            for i in 0 ..< watchedWords where guest_load64(watched + i * 8) != pattern(seed, i) {
                anomalies += 1
                print("canary: ANOMALY its memory changed at \(hex(watched + i * 8))")
                guest_store64(watched + i * 8, pattern(seed, i))
            }
            checks += 1
            let us = Timer.frequency / 1_000_000
            print("canary: t=\((Timer.ticks - start) / Timer.frequency)s rounds=\(rounds) ticks=\(ticks) round-max=\(longestRound / us)us round-avg=\(totalRound / rounds / us)us tick-max=\(longestTick / us)us checks=\(checks) anomalies=\(anomalies) last-rounds=\(lastRounds) last-max=\(lastLongest / us)us last-avg=\(lastTotal / max(lastRounds, 1) / us)us")
            (lastLongest, lastTotal, lastRounds) = (0, 0, 0)
            nextReport = Timer.ticks + Timer.frequency
        }
    }
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    PSCI.stopThisVCPU()
}
