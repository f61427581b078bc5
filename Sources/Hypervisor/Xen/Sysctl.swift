// sysctl and domctl: TernCore's Sysctl and Domctl decide; the hypervisor tells them about the machine
// and its domains.
import TernCore

func sysctl(_ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    return Sysctl.perform(arg, &memory, privileged: v.domain.privileged, HypervisorToolstack())?.returnValue ?? 0
}

func domctl(_ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    return Domctl.perform(arg, &memory, caller: v.domain.id, privileged: v.domain.privileged, HypervisorToolstack())?.returnValue ?? 0
}

struct HypervisorToolstack: ToolstackHost {
    var machine: MachineSummary {
        let total = platform.ram.reduce(0) { $0 + $1.size } / pageSize
        let end = platform.ram.reduce(0) { max($0, $1.end.raw) }
        return MachineSummary(cpus: cpus.reduce(0) { $0 + ($1.online ? 1 : 0) }, counterFrequency: counterFrequency,
                              totalPages: total, freePages: UInt64(withSpinLock(&framesLock) { frames.freePages }),
                              maxFrame: end / pageSize - 1)
    }

    func domains(from first: DomainID, limit: Int) -> [DomainSummary] { domainSummaries(from: first, limit: limit) }

    var schedulerRatelimit: UInt32 {
        lockScheduler()
        defer { unlockScheduler() }
        return UInt32(scheduler.parameters.minimumRun.raw / 1000)
    }

    func setSchedulerRatelimit(_ microseconds: UInt32) {
        lockScheduler()
        scheduler.setMinimumRun(.microseconds(UInt64(microseconds)))
        unlockScheduler()
        log { c in
            c.s("scheduler: ratelimit ")
            c.dec(Int(microseconds))
            c.s(" us")
        }
    }

    func debugKey(_ key: UInt8) { handleKeypress(key) }

    // A domain that has shut down keeps its parameters: libxl reads them then, to build it again
    // (on_reboot = restart).
    func schedulerParameters(_ id: DomainID) -> (weight: UInt32, cap: UInt32) {
        withHeldDomain(id, live: false) { d in
            lockScheduler()
            defer { unlockScheduler() }
            return (d.weight, d.cap)
        } ?? (0, 0)
    }

    func setSchedulerParameters(_ id: DomainID, weight: UInt32, cap: UInt32) {
        _ = withHeldDomain(id, live: false) { d in
            lockScheduler()
            defer { unlockScheduler() }
            d.weight = weight
            d.cap = cap
            scheduler.setParameters(d.slot, weight: weight, cap: cap)
        }
    }

    func vcpu(_ id: DomainID, _ index: Int) -> VCPUSummary? {
        withHeldDomain(id) { d -> VCPUSummary? in
            guard index < d.vcpus.count else { return nil }
            let v = d.vcpus[index]
            lockScheduler()
            defer { unlockScheduler() }
            let (pcpu, affinity) = scheduler.placement(of: v.slot)
            return VCPUSummary(online: v.online, blocked: v.blocked != .none && v.blocked != .paused && v.blocked != .offline,
                               running: v.runningOn >= 0, cpuTime: Nanoseconds(v.runstate.words(at: now()).2),
                               cpu: v.runningOn >= 0 ? v.runningOn : pcpu, affinity: affinity)
        } ?? nil
    }

    func destroy(_ id: DomainID) -> XenError? {
        withHeldDomain(id, live: false) { d -> XenError? in
            destroyDomain(d)
            return nil
        } ?? .ESRCH
    }

    // Dying domains too, as Xen's pause takes any domain the toolstack names.
    func pause(_ id: DomainID) -> XenError? { withHeldDomain(id, live: false) { pauseDomain($0) } ?? .ESRCH }
    func unpause(_ id: DomainID) -> XenError? { withHeldDomain(id, live: false) { unpauseDomain($0) } ?? .ESRCH }

    func create(_ request: DomainCreation) -> Result<DomainID, XenError> { createToolstackDomain(request) }

    // Under the scheduler lock, as getdomaininfo reads it.
    func setHandle(_ id: DomainID, _ handle: [UInt8]) -> XenError? {
        withHeldDomain(id) { d -> Bool in
            lockScheduler()
            d.handle = handle
            unlockScheduler()
            return true
        } == nil ? .ESRCH : nil
    }

    func setMaximumMemory(_ id: DomainID, pages: UInt64) -> XenError? {
        withHeldDomain(id) { d in d.physMap.withLock { $0.maximumPages = pages } } == nil ? .ESRCH : nil
    }

    func setTablePool(_ id: DomainID, pages: UInt64) -> XenError? {
        withHeldDomain(id) { d in d.physMap.withLock { $0.tables.pool.resize(to: pages) } } ?? .ESRCH
    }

    func tablePool(_ id: DomainID) -> UInt64? {
        withHeldDomain(id) { d in UInt64(d.physMap.withLock { $0.tables.pool.pages }) }
    }

    func setVCPUContext(_ id: DomainID, vcpu: Int, _ context: VCPUContext?) -> XenError? {
        withHeldDomain(id) { d in applyVCPUContext(d, vcpu: vcpu, context) } ?? .ESRCH
    }

    func setVCPUAffinity(_ id: DomainID, vcpu: Int, hard: UInt64) -> UInt64? {
        withHeldDomain(id) { d in pinVCPU(d, vcpu: vcpu, hard: hard) } ?? nil
    }

    func cleanCaches(_ id: DomainID, frames first: UInt64, count: UInt64) -> XenError? {
        withHeldDomain(id) { d in cleanDomainCaches(d, frames: first, count: count) } ?? .ESRCH
    }

    func readConsole(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                     _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? {
        readConsoleHistory(max: max, from: index, incremental: incremental, clear: clear, copy)
    }
}

/// Walks the domain table under the scheduler lock, which guards it and the vCPUs' states.
private func domainSummaries(from first: DomainID, limit: Int) -> [DomainSummary] {
    var found: [DomainSummary] = []
    lockScheduler()
    for case let d? in domains where d.id.raw >= first.raw {
        var online = 0, blocked = 0
        for v in d.vcpus where v.online {
            online += 1
            // Xen's VPF_blocked: waiting for an event; a paused vCPU whose wait is over is not.
            if v.blocked != .none && v.blocked != .paused { blocked += 1 }
        }
        // Scheduler lock, then the domain's events: the lock order's way.
        let sharedInfo = d.xenPV ? d.events.withLock { $0.sharedInfo?.raw ?? 0 } : 0
        let (pages, maxPages) = d.physMap.withLock { ($0.populatedPages, $0.maximumPages) }
        found.append(DomainSummary(
            // Xen's dying is a domain on its way out (here: to be released); a preserved or restarting
            // one is only shut down, with the guest's reason, as a destroyed one is not.
            id: d.id, dying: d.life.awaitsRelease,
            shutdownReason: d.life.shutdown.flatMap { $0.byGuest ? $0.reason.rawValue : nil }, paused: d.controllerPause.isPaused,
            running: d.vcpusOnCPUs > 0, allBlocked: blocked == online, pages: pages,
            maxPages: maxPages, sharedInfoFrame: sharedInfo / pageSize,
            cpuTime: scheduler.consumed(domain: d.slot), onlineVCPUs: online, vcpus: d.vcpus.count,
            spis: UInt32(VirtualDistributor.spiCount), handle: d.handle, ssidref: d.ssidref))
    }
    unlockScheduler()
    // Xen keeps its domains in ID order; Tern's table is by slot.
    found.sortByDomainID { $0.id }
    return Array(found.prefix(limit))
}
