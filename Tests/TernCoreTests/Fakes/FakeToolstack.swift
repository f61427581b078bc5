@testable import TernCore

/// A machine of domains for the control plane (domctl, sysctl) as the host fuzzer drives it: domains
/// come (createdomain) and go (destroydomain), are paused and unpaused, and every call the handlers
/// make must keep the protocol's word - a domain destroyed or paused exists and is not the caller, a
/// vCPU asked for is one the domain has - or the fake stops the run.
final class FakeToolstack: ToolstackHost {
    struct Domain {
        var summary: DomainSummary
        var pause = ControllerPause()
        var weight: UInt32 = 256
        var cap: UInt32 = 0
        var handle = [UInt8](repeating: 0, count: 16)
        var maximumPages: UInt64 = 0
        var tablePool = TablePool()
    }

    var caller = DomainID(0)
    private(set) var all: [UInt16: Domain] = [:]
    private(set) var keys: [UInt8] = []
    var schedulerRatelimit: UInt32 = 1000
    let machine = MachineSummary(cpus: 2, counterFrequency: 62_500_000, totalPages: 262_144, freePages: 100_000, maxFrame: 0x7FFFF)

    init() {
        add(DomainID(0), vcpus: 2)
        add(DomainID(1), vcpus: 1)
        add(DomainID(2), vcpus: 4)
    }

    func add(_ id: DomainID, vcpus: Int) {
        all[id.raw] = Domain(summary: DomainSummary(id: id, running: true, pages: 8192, maxPages: 8192,
                                                    onlineVCPUs: vcpus, vcpus: vcpus))
    }

    func existing(_ id: DomainID, _ what: String) -> Domain {
        guard let d = all[id.raw] else { fatalError("\(what) of domain \(id.raw), which does not exist") }
        return d
    }

    func domains(from first: DomainID, limit: Int) -> [DomainSummary] {
        precondition(limit >= 0, "a negative limit")
        return all.keys.sorted().filter { $0 >= first.raw }.prefix(limit).map { id in
            var s = all[id]!.summary
            s.paused = all[id]!.pause.isPaused
            return s
        }
    }

    func setSchedulerRatelimit(_ microseconds: UInt32) { schedulerRatelimit = microseconds }
    func debugKey(_ key: UInt8) { keys.append(key) }

    func schedulerParameters(_ id: DomainID) -> (weight: UInt32, cap: UInt32) {
        let d = existing(id, "scheduler parameters")
        return (d.weight, d.cap)
    }

    func setSchedulerParameters(_ id: DomainID, weight: UInt32, cap: UInt32) {
        _ = existing(id, "new scheduler parameters")
        precondition(weight > 0, "a weight of 0")
        all[id.raw]!.weight = weight
        all[id.raw]!.cap = cap
    }

    func vcpu(_ id: DomainID, _ index: Int) -> VCPUSummary? {
        guard let d = all[id.raw], index >= 0, index < d.summary.vcpus else { return nil }
        return VCPUSummary(online: true, blocked: false, running: index == 0, cpuTime: Nanoseconds(1000), cpu: 0, affinity: 0b11)
    }

    func destroy(_ id: DomainID) -> XenError? {
        _ = existing(id, "destroy")
        precondition(id != caller, "a domain destroyed by itself")
        all[id.raw] = nil
        return nil
    }

    func pause(_ id: DomainID) -> XenError? {
        _ = existing(id, "pause")
        precondition(id != caller, "a domain paused by itself")
        if case .failure(let e) = all[id.raw]!.pause.pause() { return e }
        return nil
    }

    func unpause(_ id: DomainID) -> XenError? {
        _ = existing(id, "unpause")
        if case .failure(let e) = all[id.raw]!.pause.unpause() { return e }
        return nil
    }

    func create(_ request: DomainCreation) -> Result<DomainID, XenError> {
        precondition(request.vcpus >= 1 && request.vcpus <= TernLimits.maximumVCPUsPerDomain, "\(request.vcpus) vCPUs")
        precondition(request.handle.count == 16, "a handle of \(request.handle.count) bytes")
        guard all.count < 16 else { return .failure(.ENOMEM) }
        let id: UInt16
        if let asked = request.requested {
            precondition(asked.raw > 0 && asked.raw < DomainIDs.firstReserved, "created as \(asked.raw)")
            guard all[asked.raw] == nil else { return .failure(.EEXIST) }
            id = asked.raw
        } else {
            guard let free = (1 ..< 64).first(where: { all[UInt16($0)] == nil }) else { return .failure(.ENOMEM) }
            id = UInt16(free)
        }
        add(DomainID(id), vcpus: request.vcpus)
        // A stage-2 root and two tables below it, bounded as the hypervisor leaves a new domain.
        for _ in 0 ..< 3 { _ = all[id]!.tablePool.take() }
        all[id]!.tablePool.bound(to: TablePool.initialPages)
        all[id]!.handle = request.handle
        _ = all[id]!.pause.pause()
        return .success(DomainID(id))
    }

    func setHandle(_ id: DomainID, _ handle: [UInt8]) -> XenError? {
        _ = existing(id, "setdomainhandle")
        precondition(handle.count == 16, "a handle of \(handle.count) bytes")
        all[id.raw]!.handle = handle
        return nil
    }

    func setMaximumMemory(_ id: DomainID, pages: UInt64) -> XenError? {
        _ = existing(id, "max_mem")
        all[id.raw]!.maximumPages = pages
        return nil
    }

    func setTablePool(_ id: DomainID, pages: UInt64) -> XenError? {
        _ = existing(id, "set_paging_mempool_size")
        return all[id.raw]!.tablePool.resize(to: pages)
    }

    func tablePool(_ id: DomainID) -> UInt64? { all[id.raw].map { UInt64($0.tablePool.pages) } }

    func setVCPUContext(_ id: DomainID, vcpu: Int, _ context: VCPUContext?) -> XenError? {
        let d = existing(id, "setvcpucontext")
        precondition(id != caller, "its own vCPU's context set")
        precondition(vcpu >= 0 && vcpu < d.summary.vcpus, "vCPU \(vcpu) of \(d.summary.vcpus)")
        return nil
    }

    func setVCPUAffinity(_ id: DomainID, vcpu: Int, hard: UInt64) -> UInt64? {
        guard let d = all[id.raw], vcpu >= 0, vcpu < d.summary.vcpus else { return nil }
        return hard & 0b11
    }

    func cleanCaches(_ id: DomainID, frames first: UInt64, count: UInt64) -> XenError? {
        _ = existing(id, "cacheflush")
        return nil
    }

    func readConsole(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                     _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? {
        let text = Array("(tern) up\n".utf8)
        let count = min(Int(max), text.count)
        let done = text.withUnsafeBufferPointer { copy(0, UnsafeBufferPointer(rebasing: $0[..<count])) }
        return done ? (UInt32(count), index &+ UInt32(count)) : nil
    }
}
