// Sharing the physical CPUs: switching vCPU state in and out, blocking and waking, the idle loop, and
// the one alarm each CPU keeps. The policy itself (who runs next) is TernCore's Scheduler; this file
// only carries out its choices. Everything here runs with the run-queue lock of the vCPU it works on
// held (its queue's: for a vCPU running here, this CPU's), unless noted.
//
// A vCPU's state stays on the CPU it ran on until `switchOut` saves it, and until then that CPU keeps
// its run-queue lock (and the partner's a pick locked): no other CPU can pick the vCPU up half saved.
import TernArch
import TernArchAsm
import TernCore

/// Nonzero once a CPU has begun powering off (the first to find no domain alive; others may find it too).
nonisolated(unsafe) private var poweringOff: UInt32 = 0
/// The earliest deadline of any live domain's watchdog, so the switch path checks one number; zero
/// while the control domain is to be told of a domain's end (markDomainException).
nonisolated(unsafe) var nextWatchdog = Nanoseconds.never
/// `v` runs here (its queue is this CPU's): it sleeps among this CPU's sleepers.
@inline(__always) func markSleeping(_ v: VCPU) { sleepers(thisCPUIndex()).pointee.set(v.slot, key: v.wakeAt.raw, tie: 0) }
/// The vCPU in `slot` sleeps nowhere any more (it stops for good): with every run queue's lock.
@inline(never) func markNotSleeping(slot: Int) {
    for p in 0 ..< runQueueCount { sleepers(p).pointee.remove(slot) }
}

/// Chooses what runs next on `cpu` and returns the frame to resume. Called with `cpu`'s run-queue lock
/// held, or every one (`lockScheduler`); returns with none. With nothing to run the CPU idles here (in
/// WFI) until something becomes runnable.
func schedule(_ cpu: PhysicalCPU) -> UnsafeMutablePointer<tern_frame> {
    let p = cpu.index
    if cpu.holdsEveryQueue { keepOnlyOwnQueue(cpu) }
    var reclaimedThisPass = false
    var wholeSchedulerLooked = false
    while true {
        let t = now()
        wakeSleepers(cpu, t)
        // The rare work that needs the whole scheduler: watchdogs and telling the control domain of a
        // domain's end (both ride on the one watchdog check, so the switch path pays nothing for
        // them), releasing dead domains, reclaiming memory a chunk per pass.
        if !wholeSchedulerLooked && (t >= nextWatchdog || domainsToRelease != 0
                                     || reclaimsPending != 0 && !reclaimedThisPass) {
            wholeSchedulerLooked = true
            // After work done (it let go of the locks meanwhile), look again: telling the control domain
            // comes before releasing, a reclaim chunk once a pass.
            if withWholeScheduler(cpu, at: t, { workOfTheWholeScheduler(cpu, at: t, reclaimedThisPass: &reclaimedThisPass) }) {
                wholeSchedulerLooked = false
                continue
            }
        }
        if domainsAlive == 0 {
            let first = withUnsafeMutablePointer(to: &poweringOff) { HostAtomicWord($0).compareExchange(expected: 0, desired: 1) } == 0
            unlockRunQueue(p)
            if first { powerOff() }
            while true { tern_wfi() }
        }
        let hadVCPU = cpu.current != nil
        let partner = runQueueCount > 1 ? scheduler.partner(for: p, now: t) : nil
        if let q = partner { lockPartner(q, of: cpu, at: t) }
        let chosen = scheduler.pick(pcpu: p, partner: partner, now: t).flatMap { vcpuSlots[$0] }
        if let v = chosen {
            switchTo(v, on: cpu, at: t)
        } else if let old = cpu.current {
            switchOut(old, from: cpu, at: t)
        }
        if let q = partner { unlockRunQueue(q) }
        if let v = chosen {
            armAlarm(cpu, now: t)
            unlockRunQueue(p)
            return v.frame
        }
        if hadVCPU {
            // Once it is off the CPU its domain may be released (or restarted): look again.
            wholeSchedulerLooked = false
            continue
        }
        // Nothing to run (and nothing on this CPU): an idle CPU gives back dead domains' grant
        // mappings and scrubs until it is done or something wants the CPU.
        if grantMappingsToDrop != 0 && domainsToRelease != 0 && withWholeScheduler(cpu, at: t, {
            releaseDeadDomains()
            return grantMappingsToDrop != 0
        }) { continue }
        if reclaimsPending != 0 && withWholeScheduler(cpu, at: t, { reclaimsPending != 0 && reclaimStep() }) { continue }
        armAlarm(cpu, now: t)
        unlockRunQueue(p)
        idle(cpu)
        lockRunQueue(p)
        wholeSchedulerLooked = false
    }
}

/// Runs `work` holding every run-queue lock, from a pick holding `cpu`'s. The others are tried first
/// (no waiting out of order), so usually the vCPU here stays on the CPU; if one is taken, this CPU lets
/// go of its own and takes them all in order, its vCPU leaving the CPU first (with this CPU's lock let
/// go, another could pick it up half saved). `work` switches the vCPU out itself before any step that
/// lets go of the locks. Returns what `work` did, holding `cpu`'s lock alone again.
private func withWholeScheduler(_ cpu: PhysicalCPU, at t: Nanoseconds, _ work: () -> Bool) -> Bool {
    let p = cpu.index
    var taken = 0
    while taken < runQueueCount && (taken == p || tryLockRunQueue(taken)) { taken += 1 }
    if taken < runQueueCount {
        for q in 0 ..< taken where q != p { unlockRunQueue(q) }
        if let old = cpu.current { switchOut(old, from: cpu, at: t) }
        unlockRunQueue(p)
        lockScheduler()
    } else {
        cpu.holdsEveryQueue = true
    }
    let did = work()
    keepOnlyOwnQueue(cpu)
    return did
}

/// From holding every run-queue lock to holding `cpu`'s alone.
private func keepOnlyOwnQueue(_ cpu: PhysicalCPU) {
    cpu.holdsEveryQueue = false
    for q in 0 ..< runQueueCount where q != cpu.index { unlockRunQueue(q) }
}

/// The whole scheduler's part of a pick; true when it did something the pick should look again after.
private func workOfTheWholeScheduler(_ cpu: PhysicalCPU, at t: Nanoseconds, reclaimedThisPass: inout Bool) -> Bool {
    if t >= nextWatchdog {
        fireWatchdogs(t)
        // Telling lets go of the locks meanwhile: the vCPU here leaves the CPU first.
        if domainExceptionPending {
            if let old = cpu.current { switchOut(old, from: cpu, at: t) }
            tellControlDomain()
            return true
        }
    }
    releaseDeadDomains()
    // A chunk per pass, so a CPU with vCPUs to run is held up only briefly. The chunk is scrubbed with
    // the locks let go: the vCPU here leaves the CPU first.
    guard reclaimsPending != 0 && !reclaimedThisPass && reclaimWorkAvailable else { return false }
    if let old = cpu.current { switchOut(old, from: cpu, at: t) }
    if reclaimStep() {
        // The time went to the hypervisor, not to the vCPU the scheduler still has here.
        scheduler.hypervisorWork(pcpu: cpu.index, from: t, to: now())
        reclaimedThisPass = true
        return true
    }
    return false
}

/// Takes the lock of `q`, the queue a pick on `cpu` looks at besides its own. Locks are taken in CPU
/// order; a lower one is tried, and if it is taken, this CPU lets go of its own and takes both in order
/// (its vCPU leaving the CPU first, as for the whole scheduler's work).
private func lockPartner(_ q: Int, of cpu: PhysicalCPU, at t: Nanoseconds) {
    if q > cpu.index {
        lockRunQueue(q)
    } else if !tryLockRunQueue(q) {
        if let old = cpu.current { switchOut(old, from: cpu, at: t) }
        unlockRunQueue(cpu.index)
        lockRunQueue(q)
        lockRunQueue(cpu.index)
    }
}

/// Puts `v` on `cpu`, saving whatever ran there before.
private func switchTo(_ v: VCPU, on cpu: PhysicalCPU, at t: Nanoseconds) {
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
    if runQueueCount > 1 { countAtOnce(v, on: cpu.index) } else if v.mostAtOnce == 0 { v.mostAtOnce = 1 }
    cpu.current = v
    virtualTimerSwitchedIn(v, cpu)
    flushPendingInterrupts(v)
}

/// Notes that `v`'s domain runs on `p`, and how many of its vCPUs run now (Domain.maximumConcurrent).
@inline(never) private func countAtOnce(_ v: VCPU, on p: Int) {
    let d = v.domain.slot
    domainOnCPU[p] = d
    var atOnce = 0
    for q in 0 ..< runQueueCount where domainOnCPU[q] == d { atOnce += 1 }
    if atOnce > v.mostAtOnce { v.mostAtOnce = atOnce }
}

private func switchOut(_ v: VCPU, from cpu: PhysicalCPU, at t: Nanoseconds) {
    v.enterRunstate(v.blocked.runstate, at: t)
    // A timer interrupt the guest has just finished leaves with its list register freed, not as a
    // maintenance interrupt that nobody would take while no vCPU is loaded here.
    timerInterruptsDeactivated(v)
    tern_el1_save(v.el1)
    tern_fp_save(v.fp)
    tern_vgic_save(v.vgic)
    write_ich_hcr_el2(0)                    // no virtual interface, and so no maintenance, until the next vCPU
    v.runningOn = -1
    if runQueueCount > 1 { domainOnCPU[cpu.index] = -1 }
    cpu.current = nil
}

/// The running vCPU waits (WFI, SCHEDOP_block or poll) unless an interrupt is already waiting for it.
/// Returns false when it should simply continue, with what it waits for in its list registers.
func blockCurrent(_ v: VCPU, reason: BlockReason, pollDeadline: Nanoseconds = .never) -> Bool {
    // Its domain was shut down while it waited for the lock: it is offline already, and leaves.
    guard !v.domain.dying else { return true }
    timerInterruptsDeactivated(v)           // a timer still due after the guest handled it is pending again
    let virtualTimer = Blocking.VirtualTimer(control: read_cntv_ctl_el0(), compare: CounterTicks(read_cntv_cval_el0()),
                                             inFlight: v.timerInFlight)
    let wakeAt: Nanoseconds
    switch Blocking.decide(interruptWaiting: hasPendingInterrupt(v), virtualTimer: virtualTimer,
                           physicalTimer: physicalTimerDeadline(v), poll: pollDeadline,
                           counterNow: CounterTicks(GenericTimer.now), counter: systemCounter) {
    case .interruptWaiting:
        flushPendingInterrupts(v)
        return false
    case .timerDue:
        return false
    case .sleep(let time):
        wakeAt = time
    }
    v.blocked = reason
    v.wakeAt = wakeAt
    if wakeAt != .never { markSleeping(v) }
    v.pollDeadline = pollDeadline
    scheduler.block(v.slot, now: now())
    return true
}

/// Something a blocked vCPU waits for has happened. Under the lock of its queue (`lockHome`).
func wake(_ v: VCPU) {
    guard v.blocked != .none, v.online, !v.domain.dying else { return }
    guard !v.domain.controllerPause.isPaused else { return parkPaused(v) }
    v.blocked = .none
    endWait(v)
    let t = now()
    if v.runningOn < 0 { v.runstate.enter(.runnable, at: t) }
    // One whose state is still on a CPU (it has just blocked there, and a timer of its own woke it in
    // the same pass) stays in its queue, whose lock that CPU holds until the state is saved: moved to
    // another queue, another CPU could pick it up half saved.
    if v.runningOn >= 0 { makeRunnable(v, now: t, locks: NoMoves()) } else { makeRunnable(v, now: t, locks: RunQueueTryLocks()) }
}

/// The scheduler's part of `wake`: `v` waits in a queue, and the CPU that should run it is kicked.
@inline(never) private func makeRunnable<Locks: RunQueueLocking>(_ v: VCPU, now t: Nanoseconds, locks: Locks) {
    let home = scheduler.placement(of: v.slot).pcpu
    if let p = scheduler.wake(v.slot, now: t, locks: locks) {
        if p != thisCPUIndex() { kickCPU(p) }
    } else if scheduler.placement(of: v.slot).pcpu == home,
              // (moved by the wake, it is in a queue whose lock this CPU does not hold)
              let p = scheduler.preemption(for: v.slot, now: t, locks: locks) {
        // Its vCPU gives way at the pick the kick causes (on this CPU too: the kick is taken on the way
        // back to the guest).
        kickCPU(p)
    }
}

@inline(__always) private func endWait(_ v: VCPU) {
    stopPolling(v)
    v.wakeAt = .never
    sleepers(scheduler.placement(of: v.slot).pcpu).pointee.remove(v.slot)
    v.pollDeadline = .never
}

/// In a paused domain what the vCPU waited for has come: it waits for the unpause instead.
@inline(never) private func parkPaused(_ v: VCPU) {
    v.blocked = .paused
    endWait(v)
}

/// The toolstack pauses `d` (domctl pausedomain; not the caller's own domain): its runnable vCPUs
/// leave the run queues, one on a CPU is kicked off it, and the call returns once none is on a CPU,
/// as Xen's vcpu_sleep_sync waits. Without that wait an unpause could put a vCPU on a second CPU
/// while the first still held it.
func pauseDomain(_ d: Domain) -> XenError? {
    lockScheduler()
    switch d.controllerPause.pause() {
    case .failure(let error):
        unlockScheduler()
        return error
    case .success(false):
        unlockScheduler()
        return nil
    case .success(true):
        break
    }
    let t = now()
    for v in d.vcpus where v.online && v.blocked == .none {
        v.blocked = .paused
        scheduler.block(v.slot, now: t)
        if v.runningOn >= 0 { kickCPU(v.runningOn) } else { v.enterRunstate(.offline, at: t) }
    }
    unlockScheduler()
    // The kicked CPUs switch them out under the lock, so it is let go between looks.
    while true {
        lockScheduler()
        var onCPU = false
        for v in d.vcpus where v.runningOn >= 0 { onCPU = true }
        unlockScheduler()
        if !onCPU { return nil }
    }
}

/// The last outstanding pause of `d` ends: its vCPUs whose waits ended meanwhile run again.
func unpauseDomain(_ d: Domain) -> XenError? {
    lockScheduler()
    defer { unlockScheduler() }
    switch d.controllerPause.unpause() {
    case .failure(let error): return error
    case .success(false): return nil
    case .success(true): break
    }
    for v in d.vcpus where v.blocked == .paused { wake(v) }
    return nil
}

/// Wakes every blocked vCPU of `cpu`'s queue whose virtual timer or poll timeout has come: the sleepers
/// are a heap by wake-up time, so this looks at the due ones only.
private func wakeSleepers(_ cpu: PhysicalCPU, _ t: Nanoseconds) {
    let sleepers = sleepers(cpu.index)
    while let due = sleepers.pointee.first, due.key <= t.raw {
        sleepers.pointee.remove(due.slot)       // woken below, or of a dying domain that never wakes
        // (or of one whose slot another vCPU has now, of another queue: not this CPU's to wake)
        guard let v = vcpuSlots[due.slot], scheduler.placement(of: due.slot).pcpu == cpu.index else { continue }
        if v.pollDeadline <= t {
            v.setRegister(0, 0)
        }
        // Its saved timer is its timer only once it is off the CPU (one that has just blocked here may
        // still be on it: its live timer raises its own interrupt when it goes back in).
        let ctl = v.el1.pointee.cntv_ctl
        if v.runningOn < 0 && ctl & 3 == 1 && !v.timerInFlight && systemCounter.deadline(at: CounterTicks(v.el1.pointee.cntv_cval)) <= t {
            v.timerInFlight = true
            _ = v.domain.withVGIC { v.redistributor.raise(Int(GuestLayout.virtualTimerPPI)) }
        }
        syncPhysicalTimer(v, now: GenericTimer.now)
        wake(v)
    }
}

/// Sets `cpu`'s one alarm for the earliest of its slice end, a watchdog, a sleeper's wake-up and the
/// running vCPU's emulated physical timer.
func armAlarm(_ cpu: PhysicalCPU, now t: Nanoseconds) {
    var deadline = min(scheduler.deadline(pcpu: cpu.index) ?? .never, nextWatchdog)
    if let v = cpu.current { deadline = min(deadline, physicalTimerDeadline(v)) }
    if let sleeper = sleepers(cpu.index).pointee.first { deadline = min(deadline, Nanoseconds(sleeper.key)) }
    if deadline == .never {
        GenericTimer.cancelAlarm()
    } else {
        GenericTimer.setAlarm(at: systemCounter.ticks(at: max(deadline, t)).raw)
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

private func powerOff() -> Never {
    log("all domains have ended; powering off")
    for cpu in cpus where cpu.online {
        log { c in
            c.s("pcpu")
            c.dec(cpu.index)
            c.s(": idle ")
            c.dec(systemCounter.duration(cpu.idleTicks).raw / 1_000_000)
            c.s(" ms of ")
            c.dec(now().raw / 1_000_000)
            c.s(" ms, waited ")
            c.dec(systemCounter.duration(cpu.lockWaitTicks).raw / 1_000)
            c.s(" us for run-queue locks (")
            c.dec(cpu.lockWaits)
            c.s(" times)")
        }
    }
    firmware.systemOff()
}
