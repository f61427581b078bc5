// Sharing the physical CPUs: switching vCPU state in and out, blocking and waking, the idle loop, and
// the one alarm each CPU keeps. The policy itself (who runs next) is TernCore's Scheduler; this file
// only carries out its choices. Everything here runs with the scheduler lock held unless noted.
import TernArch
import TernArchAsm
import TernCore

nonisolated(unsafe) private var poweringOff = false
/// The earliest deadline of any live domain's watchdog, so the switch path checks one number.
nonisolated(unsafe) private var nextWatchdog: UInt64 = .max

/// Chooses what runs next on `cpu` and returns the frame to resume. Called locked; returns unlocked.
/// With nothing to run the CPU idles here (in WFI) until something becomes runnable.
func schedule(_ cpu: PhysicalCPU) -> UnsafeMutablePointer<tern_frame> {
    var reclaimedThisPass = false
    while true {
        let t = now()
        wakeSleepers(t)
        if t >= nextWatchdog { fireWatchdogs(t) }
        releaseDeadDomains()
        // Reclaim work goes a chunk per pass, so a CPU with vCPUs to run is held up only briefly. The
        // lock is let go meanwhile, so the vCPU here leaves the CPU first: no vCPU is ever half on one.
        if reclaimsPending != 0 && !reclaimedThisPass && reclaiming.contains(where: { !$0.busy }) {
            if let old = cpu.current { switchOut(old, from: cpu, at: t) }
            if reclaimStep() {
                // The time went to the hypervisor, not to the vCPU the scheduler still has here.
                scheduler.hypervisorWork(pcpu: cpu.index, from: t, to: now())
                reclaimedThisPass = true
                continue
            }
        }
        if domainsAlive == 0 {
            let first = !poweringOff
            poweringOff = true
            unlockScheduler()
            if first { powerOff() }
            while true { tern_wfi() }
        }
        if let slot = scheduler.pick(pcpu: cpu.index, now: t), let v = vcpuSlots[slot] {
            switchTo(v, on: cpu, at: t)
            armAlarm(cpu, now: t)
            unlockScheduler()
            return v.frame
        }
        if let old = cpu.current {
            // Once it is off the CPU its domain may be released (or restarted): look again.
            switchOut(old, from: cpu, at: t)
            continue
        }
        // Nothing to run (and nothing on this CPU): an idle CPU scrubs until it is done or something
        // wants the CPU.
        if reclaimsPending != 0 && reclaimStep() { continue }
        armAlarm(cpu, now: t)
        unlockScheduler()
        idle(cpu)
        lockScheduler()
    }
}

/// Puts `v` on `cpu`, saving whatever ran there before.
private func switchTo(_ v: VCPU, on cpu: PhysicalCPU, at t: UInt64) {
    if let old = cpu.current {
        if old === v {
            flushPendingInterrupts(v)       // a kick may have been about an interrupt for it
            return
        }
        switchOut(old, from: cpu, at: t)
    }
    write_vttbr_el2(v.domain.vttbr)
    tern_isb()
    tern_el1_restore(v.el1)
    tern_fp_restore(v.fp)
    tern_vgic_restore(v.vgic)
    write_ich_hcr_el2(1)
    v.enterRunstate(.running, at: t)
    v.runningOn = cpu.index
    v.pcpusUsed |= 1 << UInt64(cpu.index)
    let d = v.domain
    d.pcpusUsed |= 1 << UInt64(cpu.index)
    d.running += 1
    if d.running > d.maximumConcurrent { d.maximumConcurrent = d.running }
    cpu.current = v
    virtualTimerSwitchedIn(v, cpu)
    flushPendingInterrupts(v)
}

private func switchOut(_ v: VCPU, from cpu: PhysicalCPU, at t: UInt64) {
    v.enterRunstate(v.blocked == .none ? .runnable : v.blocked == .offline ? .offline : .blocked, at: t)
    // A timer interrupt the guest has just finished leaves with its list register freed, not as a
    // maintenance interrupt that nobody would take while no vCPU is loaded here.
    timerInterruptsDeactivated(v)
    tern_el1_save(v.el1)
    tern_fp_save(v.fp)
    tern_vgic_save(v.vgic)
    write_ich_hcr_el2(0)                    // no virtual interface, and so no maintenance, until the next vCPU
    v.runningOn = -1
    v.domain.running -= 1
    cpu.current = nil
}

/// The running vCPU waits (WFI, SCHEDOP_block or poll) unless an interrupt is already waiting for it.
/// Returns false when it should simply continue, with what it waits for in its list registers.
func blockCurrent(_ v: VCPU, reason: BlockReason, pollDeadline: UInt64 = .max) -> Bool {
    timerInterruptsDeactivated(v)           // a timer still due after the guest handled it is pending again
    if hasPendingInterrupt(v) {
        flushPendingInterrupts(v)
        return false
    }
    // Its timers wake it: the virtual one unless its interrupt is already in the guest's hands.
    var wakeAt = min(pollDeadline, physicalTimerDeadline(v))
    if read_cntv_ctl_el0() & 3 == 1 && !v.timerInFlight {
        let cval = read_cntv_cval_el0()
        if cval <= GenericTimer.now { return false }
        wakeAt = min(wakeAt, nanoseconds(ticks: cval))
    }
    v.blocked = reason
    v.wakeAt = wakeAt
    v.pollDeadline = pollDeadline
    scheduler.block(v.slot, now: now())
    return true
}

/// Something a blocked vCPU waits for has happened.
func wake(_ v: VCPU) {
    guard v.blocked != .none, v.online, !v.domain.dying else { return }
    v.blocked = .none
    stopPolling(v)
    v.wakeAt = .max
    v.pollDeadline = .max
    let t = now()
    if v.runningOn < 0 { v.runstate.enter(.runnable, at: t) }
    if let p = scheduler.wake(v.slot, now: t), p != thisCPUIndex() {
        GICv3.kick(cpu: p)
    }
}

/// Wakes every blocked vCPU whose virtual timer or poll timeout has come.
private func wakeSleepers(_ t: UInt64) {
    for case let v? in vcpuSlots where v.blocked != .none && v.blocked != .offline && v.wakeAt <= t {
        if v.pollDeadline <= t {
            v.setRegister(0, 0)
        }
        // Its saved timer is its timer only once it is off the CPU (one that has just blocked here may
        // still be on it: its live timer raises its own interrupt when it goes back in).
        let ctl = v.el1.pointee.cntv_ctl
        if v.runningOn < 0 && ctl & 3 == 1 && !v.timerInFlight && nanoseconds(ticks: v.el1.pointee.cntv_cval) <= t {
            v.timerInFlight = true
            _ = v.domain.withVGIC { v.redistributor.raise(Int(GuestLayout.virtualTimerPPI)) }
        }
        syncPhysicalTimer(v, now: GenericTimer.now)
        wake(v)
    }
}

/// Sets `cpu`'s one alarm for the earliest of its slice end, a watchdog, a sleeper's wake-up and the
/// running vCPU's emulated physical timer.
func armAlarm(_ cpu: PhysicalCPU, now t: UInt64) {
    var deadline = min(scheduler.deadline(pcpu: cpu.index) ?? .max, nextWatchdog)
    if let v = cpu.current { deadline = min(deadline, physicalTimerDeadline(v)) }
    for case let v? in vcpuSlots where v.blocked != .none && v.blocked != .offline {
        deadline = min(deadline, v.wakeAt)
    }
    if deadline == .max {
        GenericTimer.cancelAlarm()
    } else {
        GenericTimer.setAlarm(at: ticks(nanoseconds: max(deadline, t)))
    }
}

/// Waits for an interrupt with nothing to run. Interrupts stay masked at EL2: WFI still wakes on them,
/// and they are taken here by acknowledging, so the idle path needs no EL2 interrupt vector.
private func idle(_ cpu: PhysicalCPU) {
    let start = GenericTimer.now
    tern_wfi()
    while true {
        let intid = GICv3.acknowledge()
        if intid >= GICv3.spurious { break }
        if intid == GICv3.hypervisorTimerPPI { GenericTimer.cancelAlarm() }
        if intid == consoleInterrupt { consoleInputInterrupt() }
        GICv3.endOfInterrupt(intid)
    }
    cpu.idleTicks &+= GenericTimer.now &- start
}

/// Ends a domain: its vCPUs stop everywhere, and its memory is released once none of them is on a CPU.
/// `via` says which interface the guest used (or what Tern saw), for the log.
func shutdownDomain(_ d: Domain, reason asked: ShutdownReason, via: StaticString = "") {
    guard !d.dying else { return }
    d.flushConsole()
    // After Linux's panic banner, a restart or power-off is what `panic=N` does, not what the guest wants.
    let afterPanic = asked != .crash && d.hasPanicked
    let reason = afterPanic ? .crash : asked
    d.dying = true
    d.shutdownReason = reason
    d.afterShutdown = d.action(for: reason)
    // A domain that will be rebuilt still counts as alive, or the machine would power off meanwhile.
    if d.afterShutdown != .restart { domainsAlive -= 1 }
    let t = now()
    let me = thisCPUIndex()
    for v in d.vcpus {
        scheduler.block(v.slot, now: t)
        v.blocked = .offline
        v.online = false
        if v.runningOn >= 0 && v.runningOn != me { GICv3.kick(cpu: v.runningOn) }
    }
    log { c in
        c.domain(d)
        c.s(": shutdown: ")
        c.s(reason.name)
        if afterPanic {
            c.s(" via Linux panic, then ")
            c.s(via)
        } else if via.utf8CodeUnitCount > 0 {
            c.s(" via ")
            c.s(via)
        }
        switch d.afterShutdown {
        case .destroy: break
        case .restart: c.s(" (restarting)")
        case .preserve: c.s(" (preserved)")
        }
    }
    log { c in
        c.domain(d)
        c.s(": ran on pcpus")
        for p in 0 ..< cpus.count where d.pcpusUsed & (1 << UInt64(p)) != 0 {
            c.s(" ")
            c.dec(p)
        }
        c.s(", at most ")
        c.dec(d.maximumConcurrent)
        c.s(" vcpus at once, cpu time ")
        c.dec(scheduler.consumed(domain: d.slot) / 1_000_000)
        c.s(" ms")
    }
}

/// Ends a domain whose console has just shown the end of a Linux panic report, after which the kernel
/// spins for ever. Called from a trap of one of its vCPUs; the kick makes this CPU leave it at once.
func crashAfterPanic(_ d: Domain) {
    lockScheduler()
    shutdownDomain(d, reason: .crash, via: "Linux panic")
    unlockScheduler()
    GICv3.kick(cpu: thisCPUIndex())
}

/// SCHEDOP_watchdog for `v`'s domain: arms, pokes or stops one of its watchdogs (sched_watchdog { id,
/// timeout in seconds }) and makes this CPU's alarm cover the new deadline.
func watchdogCommand(_ v: VCPU, id: UInt32, timeout: UInt32) -> UInt64 {
    lockScheduler()
    defer { unlockScheduler() }
    let t = now()
    switch v.domain.watchdogs.command(id: id, timeout: timeout, now: t) {
    case .success(let assigned):
        updateNextWatchdog()
        armAlarm(thisCPU(), now: t)
        return UInt64(assigned)
    case .failure(.noneFree): return XenError.ENOSPC.returnValue
    case .failure(.invalid): return XenError.EINVAL.returnValue
    }
}

private func updateNextWatchdog() {
    nextWatchdog = .max
    for case let d? in domains where !d.dying { nextWatchdog = min(nextWatchdog, d.watchdogs.next ?? .max) }
}

/// Shuts down every domain whose watchdog ran out (on_watchdog decides what follows), as Xen does.
private func fireWatchdogs(_ t: UInt64) {
    for case let d? in domains where !d.dying && d.watchdogs.hasFired(at: t) {
        log { c in
            c.domain(d)
            c.s(": watchdog timer fired")
        }
        shutdownDomain(d, reason: .watchdog)
    }
    updateNextWatchdog()
}

/// Kills a domain for something it did; the hypervisor and the other domains carry on.
func crashDomain(_ d: Domain) {
    shutdownDomain(d, reason: .crash)
}

/// Frees what dead domains held once none of their vCPUs is on a CPU, and rebuilds those whose config
/// says restart. A preserved domain keeps its memory (for inspection) but never runs again. A domain
/// whose grants others still map keeps its memory until they unmap them (or die themselves).
private func releaseDeadDomains() {
    for case let d? in domains where d.dying && d.running == 0 && d.afterShutdown != .preserve && d.pins == 0 {
        if d.xenPV && !d.detached {
            d.detached = true
            dropGrantMappings(d)
            unbindPeers(d)
        }
        let mapped = d.withXen { d.activeGrants.total }
        if mapped > 0 {
            if !d.heldForGrants {
                d.heldForGrants = true
                log { c in
                    c.domain(d)
                    c.s(": memory kept while other domains map ")
                    c.dec(mapped)
                    c.s(" of its grants")
                }
            }
            continue
        }
        if d.heldForGrants {
            log { c in
                c.domain(d)
                c.s(": its grants are no longer mapped; memory released")
            }
        }
        scheduler.removeDomain(d.slot)
        for v in d.vcpus { vcpuSlots[v.slot] = nil }
        d.vcpus.removeAll()
        domains[d.slot] = nil
        // Its VMID goes to whoever takes the slot next: nothing of it may stay in any TLB.
        forgetTranslations(d)
        reclaiming.append(Reclaim(domain: d))
        reclaimsPending += 1
    }
}

/// A dead domain whose memory is being scrubbed and given back, a chunk at a time and outside the
/// scheduler lock (scrubbing a large domain takes long, and every CPU needs that lock). One CPU works
/// on it at a time. A domain that restarts keeps its scrubbed memory out of the allocator until the
/// end, so nothing else takes a piece of it meanwhile, and is rebuilt (outside the lock too) right
/// after its memory goes back.
private struct Reclaim {
    let domain: Domain
    var scrubbed: UInt64 = 0
    var busy = false
}

/// Guarded by the scheduler lock. The count is what the switch path looks at: a plain global, with no
/// lazy initialization to go through on every pass.
nonisolated(unsafe) private var reclaiming: [Reclaim] = []
nonisolated(unsafe) private var reclaimsPending = 0
/// How much one scheduling pass scrubs at most: about as long as a few vCPU switches under QEMU.
private let reclaimChunk: UInt64 = 4 << 20

/// Takes one step of the reclaim work: a chunk scrubbed and freed or, at the end, the domain's last
/// frames freed and a restarting domain rebuilt and started. Called locked, returns locked, and lets
/// go of the lock meanwhile. Returns false when there was nothing it could do.
private func reclaimStep() -> Bool {
    guard let i = reclaiming.firstIndex(where: { !$0.busy }) else { return false }
    reclaiming[i].busy = true
    let d = reclaiming[i].domain
    let done = reclaiming[i].scrubbed
    let size = min(reclaimChunk, d.memory.size - done)
    let restarting = d.afterShutdown == .restart
    unlockScheduler()
    if size > 0 && restarting {
        tern_zero((d.memory.base + done).raw, size)
    } else if size > 0 {
        freeFrames(d.memory.base + done, pages: Int(size / pageSize))
    } else {
        if restarting { freeScrubbedFrames(d.memory.base, pages: Int(d.memory.size / pageSize)) }
        for frame in d.ownedFrames { freeFrames(frame, pages: 1) }
        d.ownedFrames.removeAll()
        d.tables.releaseAll()
    }
    let rebuilt = size == 0 && restarting ? rebuild(d) : nil
    lockScheduler()
    guard let j = reclaiming.firstIndex(where: { $0.domain === d }) else { return true }
    if size > 0 {
        reclaiming[j].scrubbed += size
        reclaiming[j].busy = false
        return true
    }
    reclaiming.remove(at: j)
    reclaimsPending -= 1
    if d.afterShutdown == .restart {
        domainsAlive -= 1        // startDomain counts it again
        if let rebuilt { startRebuilt(rebuilt) }
    }
    return true
}

/// Builds a restarting domain again from its boot module, with fresh memory. Outside the lock: the
/// copies take long, and nothing else uses its slots meanwhile.
private func rebuild(_ old: Domain) -> Domain? {
    let (built, _) = buildDomain(old.spec, slot: old.slot, firstVCPUSlot: old.firstVCPUSlot)
    guard let d = built else {
        log { c in
            c.domain(old)
            c.s(": could not be rebuilt; destroyed")
        }
        return nil
    }
    d.restarts = old.restarts + 1
    return d
}

private func startRebuilt(_ d: Domain) {
    startDomain(d)
    log { c in
        c.domain(d)
        c.s(": restarted (")
        c.dec(d.restarts)
        c.s(")")
    }
}

private func powerOff() -> Never {
    log("all domains have ended; powering off")
    for cpu in cpus where cpu.online {
        log { c in
            c.s("pcpu")
            c.dec(cpu.index)
            c.s(": idle ")
            c.dec(nanoseconds(ticks: bootTicks &+ cpu.idleTicks) / 1_000_000)
            c.s(" ms of ")
            c.dec(now() / 1_000_000)
            c.s(" ms")
        }
    }
    firmware.systemOff()
}
