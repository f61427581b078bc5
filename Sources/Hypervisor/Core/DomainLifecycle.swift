// A domain's life after its guest: shutting it down (on its own request, a crash, a panic seen on its
// console, a watchdog), and once none of its vCPUs is on a CPU, giving back what it held (a chunk at a
// time, outside the scheduler lock) and rebuilding it when its config says restart. Everything here
// runs with the scheduler lock held unless noted.
import TernArch
import TernArchAsm
import TernCore

/// Dead domains not yet released (a preserved one never is): the switch path looks only when some are.
nonisolated(unsafe) var domainsToRelease = 0
/// Dead domains whose mappings of others' grants are still being given back, a piece a pass: an idle
/// CPU goes on with them rather than wait for a pass something else brings.
nonisolated(unsafe) var grantMappingsToDrop = 0
/// A domain shut down, died or was released since the control domain was last told (VIRQ_DOM_EXC).
nonisolated(unsafe) var domainExceptionPending = false

/// The control domain is to hear of a domain's end at the next scheduling pass. Under the lock.
func markDomainException() {
    domainExceptionPending = true
    nextWatchdog = Nanoseconds(0)
}

/// Raises VIRQ_DOM_EXC in the control domain, if it bound it. Called locked from the switch path with
/// no vCPU on this CPU, and lets go of the lock meanwhile (raising takes it).
func tellControlDomain() {
    domainExceptionPending = false
    var control: Domain?
    for case let d? in domains where d.privileged && d.xenPV && !d.dying { control = d }
    guard let c = control, c.withReferences({ DomainReferences.hold($0) }) else { return }
    let port = c.events.withLock { $0.ports.port(forVIRQ: VIRQ.domainException.rawValue, vcpu: 0) }
    unlockScheduler()
    if let port { notifyPort(c, port) }
    c.withReferences { DomainReferences.drop($0) }
    lockScheduler()
}

/// Ends a domain: its vCPUs stop everywhere, and its memory is released once none of them is on a CPU.
/// `via` says which interface the guest used (or what Tern saw), for the log.
func shutdownDomain(_ d: Domain, reason asked: ShutdownReason, via: StaticString = "") {
    guard !d.dying else { return }
    d.flushConsole()
    guard let shutdown = d.life.shutDown(asked, hasPanicked: d.hasPanicked, actions: d.spec.actions) else { return }
    if d.life.awaitsRelease { domainsToRelease += 1 }
    if !d.life.countsAsAlive { domainsAlive -= 1 }
    markDomainException()
    stopVCPUs(d)
    log { c in
        c.domain(d)
        c.s(": shutdown: ")
        c.s(shutdown.reason.name)
        if shutdown.afterPanic {
            c.s(" via Linux panic, then ")
            c.s(via)
        } else if via.utf8CodeUnitCount > 0 {
            c.s(" via ")
            c.s(via)
        }
        switch shutdown.after {
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
        c.dec(scheduler.consumed(domain: d.slot).raw / 1_000_000)
        c.s(" ms")
    }
    // The domains its toolstack built have nobody to manage them any more (on Xen the whole machine
    // stops with dom0); those the boot configuration made run on.
    if d.privileged {
        for case let other? in domains where other !== d && other.spec.builtByToolstack {
            destroyLocked(other, by: "the control domain's end")
        }
    }
}

/// Takes every vCPU of a domain that has just died off the CPUs and out of the queues for good.
private func stopVCPUs(_ d: Domain) {
    let t = now()
    let me = thisCPUIndex()
    for v in d.vcpus {
        scheduler.block(v.slot, now: t)
        v.blocked = .offline
        markNotSleeping(slot: v.slot)
        v.online = false
        if v.runningOn >= 0 && v.runningOn != me { kickCPU(v.runningOn) }
    }
}

/// The control domain destroys `d` (domctl destroydomain, `xl destroy`): a live domain dies whatever
/// its config says, a preserved or restarting one is released. Its memory goes back once it is off
/// every CPU and nobody holds it, as after any death.
func destroyDomain(_ d: Domain) {
    lockScheduler()
    defer { unlockScheduler() }
    destroyLocked(d, by: "the control domain")
}

/// destroyDomain with the scheduler lock held; `by` names who, for the log.
private func destroyLocked(_ d: Domain, by who: StaticString) {
    let wasDying = d.dying, awaited = d.life.awaitsRelease, alive = d.life.countsAsAlive
    d.flushConsole()
    guard d.life.destroy() else { return }
    if d.life.awaitsRelease && !awaited { domainsToRelease += 1 }
    markDomainException()
    if alive && !d.life.countsAsAlive { domainsAlive -= 1 }
    if !wasDying { stopVCPUs(d) }
    log { c in
        c.domain(d)
        c.s(wasDying ? ": released by " : ": shutdown: destroyed by ")
        c.s(who)
    }
}

/// Ends a domain whose console has just shown the end of a Linux panic report, after which the kernel
/// spins for ever. Called from a trap of one of its vCPUs; the kick makes this CPU leave it at once.
func crashAfterPanic(_ d: Domain) {
    lockScheduler()
    shutdownDomain(d, reason: .crash, via: "Linux panic")
    unlockScheduler()
    kickCPU(thisCPUIndex())
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
    // A domain's end not yet told keeps the check due (markDomainException).
    guard !domainExceptionPending else {
        nextWatchdog = Nanoseconds(0)
        return
    }
    nextWatchdog = .never
    for case let d? in domains where !d.dying { nextWatchdog = min(nextWatchdog, d.watchdogs.next ?? .never) }
}

/// Shuts down every domain whose watchdog ran out (on_watchdog decides what follows), as Xen does.
func fireWatchdogs(_ t: Nanoseconds) {
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
func releaseDeadDomains() {
    guard domainsToRelease != 0 else { return }
    for case let d? in domains where d.dying {
        // Once detached it runs nowhere: others' holds on it do not stop this.
        if d.dropsGrantMappings && !dropGrantMappingsPiece(d) { continue }
        let holders = d.withReferences { DomainReferences.holders($0) }
        let onCPUs = d.vcpusOnCPUs
        guard d.life.mayRelease(vcpusOnCPUs: onCPUs, holders: holders) else {
            if d.life.announceHolders(vcpusOnCPUs: onCPUs, holders: holders) {
                log { c in
                    c.domain(d)
                    c.s(": memory kept while others hold it (")
                    c.dec(Int(holders))
                    c.s(": foreign mappings of its pages, hypercalls on it)")
                }
            }
            continue
        }
        if d.life.detach() {
            d.dropForeignMappings()
            if d.xenPV {
                unbindPeers(d)
                guard dropGrantMappingsPiece(d) else { continue }
            }
        }
        switch d.life.releaseStep(mapped: d.grants.withLock { $0.active.total }) {
        case .wait:
            continue
        case .keepForGrants(let mapped, let announce):
            if announce {
                log { c in
                    c.domain(d)
                    c.s(": memory kept while other domains map ")
                    c.dec(mapped)
                    c.s(" of its grants")
                }
            }
            continue
        case .release(let grantsWereHeld):
            // Whoever held it a moment ago has let go, or this waits for the next pass; from here on
            // nobody can hold it.
            guard d.withReferences({ DomainReferences.release($0) }) else { continue }
            if grantsWereHeld {
                log { c in
                    c.domain(d)
                    c.s(": its grants are no longer mapped; memory released")
                }
            } else if d.life.heldByOthers {
                log { c in
                    c.domain(d)
                    c.s(": no longer held; memory released")
                }
            }
        }
        scheduler.removeDomain(d.slot)
        for v in d.vcpus {
            vcpuSlots[v.slot] = nil
            markNotSleeping(slot: v.slot)
        }
        d.vcpus.removeAll()
        domains[d.slot] = nil
        domainsToRelease -= 1
        markDomainException()
        // Its VMID goes to whoever takes the slot next: nothing of it may stay in any TLB.
        forgetTranslations(d)
        reclaiming.append(Reclaim(domain: d))
        reclaimsPending += 1
    }
}

/// Gives back a piece of a dead domain's mappings of others' grants: true once none is left; until
/// then it is counted in grantMappingsToDrop.
private func dropGrantMappingsPiece(_ d: Domain) -> Bool {
    guard dropGrantMappings(d) else {
        if !d.dropsGrantMappings {
            d.dropsGrantMappings = true
            grantMappingsToDrop += 1
        }
        return false
    }
    if d.dropsGrantMappings {
        d.dropsGrantMappings = false
        grantMappingsToDrop -= 1
    }
    return true
}

/// A dead domain whose memory is being scrubbed and given back, a chunk at a time and outside the
/// scheduler lock (scrubbing a large domain takes long, and every CPU needs that lock). One CPU works
/// on it at a time. A domain that restarts keeps its scrubbed memory (never given back to the
/// allocator, so nothing else takes a piece of it) and is rebuilt into it, outside the lock too.
private struct Reclaim {
    let domain: Domain
    var scrubbed: UInt64 = 0
    var busy = false
}

/// Guarded by the scheduler lock. The count is what the switch path looks at: a plain global, with no
/// lazy initialization to go through on every pass.
nonisolated(unsafe) private var reclaiming: [Reclaim] = []
nonisolated(unsafe) var reclaimsPending = 0
/// Whether some reclaim work is not already being done by another CPU. Under the scheduler lock.
var reclaimWorkAvailable: Bool { reclaiming.contains { !$0.busy } || setAsidePieceReady }

/// How much one scheduling pass scrubs at most: about as long as a few vCPU switches under QEMU.
private let reclaimChunk: UInt64 = 4 << 20

/// Takes one step of the reclaim work: a chunk scrubbed and freed or, at the end, the domain's last
/// frames freed and a restarting domain rebuilt and started. Called locked, returns locked, and lets
/// go of the lock meanwhile. Returns false when there was nothing it could do.
func reclaimStep() -> Bool {
    if freeSetAsidePiece() { return true }
    guard let i = reclaiming.firstIndex(where: { !$0.busy }) else { return false }
    reclaiming[i].busy = true
    let d = reclaiming[i].domain
    let done = reclaiming[i].scrubbed
    // A toolstack-built domain's RAM is in pieces: a chunk's worth of them a step too.
    let inPieces = d.memory.size == 0
    // (Its piece count may still include pieces set aside by its balloon: those are freed on their own.)
    let size = inPieces ? (d.physMap.withLock { _ in d.ramPieces.contains { $0 != 0 } } ? reclaimChunk : 0) : min(reclaimChunk, d.memory.size - done)
    let restarting = d.life.shutdown?.after == .restart
    unlockScheduler()
    if size > 0 && restarting {
        tern_zero((d.memory.base + done).raw, size)
    } else if size > 0 && inPieces {
        d.freeRAMPieces(upTo: size)
    } else if size > 0 {
        freeFrames(d.memory.base + done, pages: Int(size / pageSize))
    } else {
        releaseLentFrames(d)
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
    if restarting {
        domainsAlive -= 1        // startDomain counts it again
        if let rebuilt { startRebuilt(rebuilt) }
    }
    return true
}

/// Whether a restarting domain being reclaimed will be rebuilt into domain slot `slot` (or vCPU slot
/// `vcpuSlot`): a domain created meanwhile must not take it. Under the scheduler lock.
func slotAwaitsRebuild(_ slot: Int) -> Bool {
    reclaiming.contains { $0.domain.slot == slot && $0.domain.life.shutdown?.after == .restart }
}

/// Whether a restarting domain being reclaimed will come back as `id`: no other may take the ID
/// meanwhile (two domains with one ID would each get the other's events and grants). Under the
/// scheduler lock.
func idAwaitsRebuild(_ id: DomainID) -> Bool {
    reclaiming.contains { $0.domain.id == id && $0.domain.life.shutdown?.after == .restart }
}

func vcpuSlotAwaitsRebuild(_ vcpuSlot: Int) -> Bool {
    reclaiming.contains { r in
        let d = r.domain
        return d.life.shutdown?.after == .restart && vcpuSlot >= d.firstVCPUSlot && vcpuSlot < d.firstVCPUSlot + d.spec.vcpus
    }
}

/// Builds a restarting domain again from its boot module, into its own scrubbed memory. Outside the
/// lock: the copies take long, and nothing else uses its slots meanwhile.
private func rebuild(_ old: Domain) -> Domain? {
    let restarts = old.restarts + 1
    let (built, _) = buildDomain(old.spec, slot: old.slot, firstVCPUSlot: old.firstVCPUSlot, into: old.memory,
                                 restarts: restarts)
    guard let d = built else {
        log { c in
            c.domain(old)
            c.s(": could not be rebuilt; destroyed")
        }
        return nil
    }
    d.restarts = restarts
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
