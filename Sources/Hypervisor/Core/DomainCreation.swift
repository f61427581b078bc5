// Domains the control domain's toolstack creates while the machine runs (domctl createdomain and the
// builder's domctls after it): a domain with no memory and its vCPUs offline, paused by the toolstack,
// as Xen's domain_create leaves it; libxl then gives it memory (memory_op), loads its kernel through
// foreign mappings, sets vCPU 0's context and unpauses it. What happens when its guest shuts down is
// the toolstack's to decide (xl's on_poweroff and the like): Tern keeps it, shut down, until it is
// destroyed.
import TernArchAsm
import TernCore

/// Xen's domid rover: the highest ID handed out, where the search for a free one continues.
nonisolated(unsafe) var domainIDs = DomainIDAllocator()

/// createdomain. Under the scheduler lock for the tables; the stage-2 root is made before.
func createToolstackDomain(_ request: DomainCreation) -> Result<DomainID, XenError> {
    ensureHeapHeadroom()
    var tables = PhysicalTableMemory()
    let stage2: Stage2Table<PhysicalTableMemory>
    do throws(PageTableError) {
        stage2 = try Stage2Table(memory: &tables)
    } catch {
        return .failure(.ENOMEM)
    }
    // Until its toolstack sizes the pool (libxl does before it gives the domain memory), Xen's 16 pages.
    tables.pool.bound(to: TablePool.initialPages)
    lockScheduler()
    defer { unlockScheduler() }
    func refuse(_ e: XenError) -> Result<DomainID, XenError> {
        tables.releaseAll()
        return .failure(e)
    }
    // Dying domains keep their IDs until they are released, as on Xen, and restarting ones for good.
    func inUse(_ id: DomainID) -> Bool {
        for case let d? in domains where d.id == id { return true }
        return idAwaitsRebuild(id)
    }
    var present = 0
    for case _? in domains { present += 1 }
    // Each domain needs a VMID of its own (see VMIDs): past the CPU's width there are none.
    guard present < vmids.domainLimit else { return refuse(.ENOMEM) }
    let id: DomainID
    if let asked = request.requested {
        guard !inUse(asked) else { return refuse(.EEXIST) }
        id = asked
    } else {
        guard let next = domainIDs.allocate(inUse: inUse) else { return refuse(.ENOMEM) }
        id = next
    }
    // A slot past the VMIDs' reach would share another domain's TLB entries.
    guard let (slot, firstVCPU) = freeSlots(vcpus: request.vcpus), slot < vmids.domainLimit,
          growTables(domains: slot + 1, vcpus: firstVCPU + request.vcpus) else { return refuse(.ENOMEM) }
    let spec = DomainSpec(
        id: id, name: [], memoryBytes: 0, vcpus: request.vcpus, weight: 256, cap: 0, affinity: ~0,
        kernel: PhysicalRange(base: HostPhysicalAddress(0), size: 0), ramdisk: nil, bootargs: [], uart: false,
        xenPV: true, directMapped: false, watchesPanic: false,
        actions: ShutdownActions(poweroff: .preserve, reboot: .preserve, crash: .preserve, watchdog: .preserve),
        builtByToolstack: true)
    let d = Domain(spec: spec, slot: slot, firstVCPUSlot: firstVCPU, memory: PhysicalRange(base: HostPhysicalAddress(0), size: 0),
                   ramBase: GuestLayout.ram, stage2: stage2, tables: tables)
    d.grantFrameLimit = request.grantFrames
    d.grants.withLock { $0.maptrack = Maptrack(frameLimit: request.maptrackFrames) }
    // Its RAM's pieces, none yet: made now, so those who look without the lock never see it half made.
    d.ramPieces = .allocate(capacity: Int(GuestLayout.ramMaximum / ramPieceSize))
    d.ramPieces.initialize(repeating: 0)
    d.handle = request.handle
    d.ssidref = request.ssidref
    _ = d.controllerPause.pause()
    initialHVMParameters(d)
    for i in 0 ..< request.vcpus {
        d.vcpus.append(VCPU(domain: d, index: i, slot: firstVCPU + i, count: request.vcpus))
    }
    domains[slot] = d
    scheduler.addDomain(slot, weight: d.weight, cap: d.cap)
    let t = now()
    d.startedAt = t
    let all = Sysctl.cpuMask(cpus.count)
    for v in d.vcpus {
        vcpuSlots[v.slot] = v
        scheduler.addVCPU(v.slot, domain: slot, affinity: all, now: t)
    }
    domainsAlive += 1
    log { c in
        c.domain(d)
        c.s(": created by the control domain, ")
        c.dec(request.vcpus)
        c.s(request.vcpus == 1 ? " vcpu" : " vcpus")
    }
    return .success(id)
}

/// A free domain slot and `vcpus` free vCPU slots in a row after it, beyond the tables' end if need be.
/// A domain slot or vCPU slots a restarting domain will be rebuilt into are not free.
private func freeSlots(vcpus count: Int) -> (slot: Int, firstVCPU: Int)? {
    var slot = domains.count
    for i in 0 ..< domains.count where domains[i] == nil && !slotAwaitsRebuild(i) {
        slot = i
        break
    }
    var run = 0
    for i in 0 ..< vcpuSlots.count {
        run = vcpuSlots[i] == nil && !vcpuSlotAwaitsRebuild(i) ? run + 1 : 0
        if run == count { return (slot, i + 1 - count) }
    }
    return (slot, vcpuSlots.count - run)
}

/// setvcpucontext: the vCPU takes the registers the builder gives it (Linux's boot protocol for vCPU
/// 0), with the domain paused meanwhile; online, it runs once the domain is unpaused.
func applyVCPUContext(_ d: Domain, vcpu index: Int, _ context: VCPUContext?) -> XenError? {
    guard index < d.vcpus.count else { return .EINVAL }
    if let e = pauseDomain(d) { return e }
    defer { _ = unpauseDomain(d) }
    let v = d.vcpus[index]
    lockScheduler()
    defer { unlockScheduler() }
    guard let c = context else {
        // Xen's vcpu_reset: offline, its state gone.
        v.reset(entry: GuestPhysicalAddress(0), x0: 0)
        v.online = false
        v.blocked = .offline
        return nil
    }
    v.reset(entry: GuestPhysicalAddress(c.pc), x0: c.x[0])
    for n in 1 ..< 31 { v.setRegister(n, c.x[n]) }
    v.frame.pointee.spsr = c.cpsr
    v.el1.pointee.sctlr = c.sctlr
    v.el1.pointee.tcr = c.ttbcr
    v.el1.pointee.ttbr0 = c.ttbr0
    v.el1.pointee.ttbr1 = c.ttbr1
    v.el1.pointee.sp_el1 = c.spEL1
    v.frame.pointee.sp_el0 = c.spEL0
    v.el1.pointee.elr = c.elrEL1
    v.el1.pointee.spsr = c.spsrEL1
    v.online = c.online
    if c.online { wake(v) }              // a paused domain's vCPU waits for the unpause
    return nil
}

/// setvcpuaffinity: the vCPU runs only on `hard`'s CPUs from now on; it leaves a CPU outside them.
func pinVCPU(_ d: Domain, vcpu index: Int, hard: UInt64) -> UInt64? {
    guard index < d.vcpus.count else { return nil }
    let v = d.vcpus[index]
    lockScheduler()
    let before = scheduler.placement(of: v.slot).pcpu
    let leaving = scheduler.setAffinity(v.slot, hard)
    // A blocked one changes queue now: its wake-up time goes with it, to its new CPU's sleepers.
    let after = scheduler.placement(of: v.slot).pcpu
    if after != before, let sleeper = sleepers(before).pointee.entry(v.slot) {
        sleepers(before).pointee.remove(v.slot)
        sleepers(after).pointee.set(v.slot, key: sleeper.key, tie: sleeper.tie)
    }
    if let p = leaving, p != thisCPUIndex() { kickCPU(p) }
    unlockScheduler()
    // One on a CPU it may no longer use is queued on its new CPU by that CPU's next pick: the new CPU
    // is told once it is there (told before, an idle one could look, find nothing and sleep on). The
    // caller's own vCPU leaves on the way back to it, so for that one there is no waiting.
    if let p = leaving, p != thisCPUIndex() {
        while true {
            lockScheduler()
            let moved = v.runningOn != p
            unlockScheduler()
            if moved { break }
        }
    }
    lockScheduler()
    let q = scheduler.placement(of: v.slot).pcpu
    // (A sleeper moved to this CPU's sleepers: its alarm covers it from now.)
    if q != thisCPUIndex() { kickCPU(q) } else { armAlarm(thisCPU(), now: now()) }
    unlockScheduler()
    return hard
}

/// cacheflush: what the toolstack wrote into the domain's RAM through its own cacheable mappings is
/// cleaned to memory and invalidated (as Xen's flush_page_to_ram), for a guest that starts with its
/// caches off (Linux's boot protocol).
func cleanDomainCaches(_ d: Domain, frames first: UInt64, count: UInt64) -> XenError? {
    for n in 0 ..< count {
        guard let host = d.ownPage(GuestFrameNumber(first &+ n)) else { continue }
        tern_dcache_range(host.raw, pageSize, 1, 1)
    }
    return nil
}
