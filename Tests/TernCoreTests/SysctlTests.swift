import Testing
@testable import TernCore

/// The toolstack's sysctl and domctl as libxc sends them (offsets from Xen 4.17's headers, measured
/// with clang on aarch64), and as a domU or a bad pointer would.
@Suite struct SysctlTests {
    private let arg: UInt64 = 0x8000_0000
    private let list: UInt64 = 0x9000_0000

    struct Host: ToolstackHost {
        var machine = MachineSummary(cpus: 2, counterFrequency: 62_500_000, totalPages: 262_144,
                                     freePages: 100_000, maxFrame: 0x7FFFF)
        var all: [DomainSummary] = [
            DomainSummary(id: DomainID(0), running: true, pages: 131_072, maxPages: 131_072, cpuTime: 5_000_000,
                          onlineVCPUs: 2, vcpus: 2),
            DomainSummary(id: DomainID(3), shutdownReason: 0, allBlocked: true, pages: 8192, maxPages: 8192, vcpus: 1),
            DomainSummary(id: DomainID(7), dying: true, pages: 512, maxPages: 512),
        ]
        final class Pauses { var of: [UInt16: ControllerPause] = [:] }
        let pauses = Pauses()
        func domains(from first: DomainID, limit: Int) -> [DomainSummary] {
            Array(all.filter { $0.id.raw >= first.raw }.prefix(limit)).map { d in
                var d = d
                d.paused = pauses.of[d.id.raw]?.isPaused ?? false
                return d
            }
        }
        func vcpu(_ id: DomainID, _ index: Int) -> VCPUSummary? {
            guard id.raw == 0, index < 2 else { return nil }
            return VCPUSummary(online: true, blocked: index == 1, running: index == 0, cpuTime: Nanoseconds(UInt64(index + 1) * 1000),
                               cpu: index, affinity: index == 0 ? 0b11 : 0b10)
        }
        final class Parameters {
            var of: [UInt16: (weight: UInt32, cap: UInt32)] = [:]
            var ratelimit: UInt32 = 1000
            var keys: [UInt8] = []
        }
        let parameters = Parameters()
        var schedulerRatelimit: UInt32 { parameters.ratelimit }
        func setSchedulerRatelimit(_ microseconds: UInt32) { parameters.ratelimit = microseconds }
        func debugKey(_ key: UInt8) { parameters.keys.append(key) }
        func schedulerParameters(_ id: DomainID) -> (weight: UInt32, cap: UInt32) { parameters.of[id.raw] ?? (256, 0) }
        func setSchedulerParameters(_ id: DomainID, weight: UInt32, cap: UInt32) { parameters.of[id.raw] = (weight, cap) }
        final class Destroyed { var ids: [UInt16] = [] }
        let destroyed = Destroyed()
        func destroy(_ id: DomainID) -> XenError? {
            destroyed.ids.append(id.raw)
            return nil
        }
        func pause(_ id: DomainID) -> XenError? {
            var p = pauses.of[id.raw] ?? ControllerPause()
            defer { pauses.of[id.raw] = p }
            if case .failure(let e) = p.pause() { return e }
            return nil
        }
        func unpause(_ id: DomainID) -> XenError? {
            var p = pauses.of[id.raw] ?? ControllerPause()
            defer { pauses.of[id.raw] = p }
            if case .failure(let e) = p.unpause() { return e }
            return nil
        }
        func create(_ request: DomainCreation) -> Result<DomainID, XenError> { .failure(.ENOMEM) }
        func setMaximumMemory(_ id: DomainID, pages: UInt64) -> XenError? { nil }
        func setTablePool(_ id: DomainID, pages: UInt64) -> XenError? { nil }
        func tablePool(_ id: DomainID) -> UInt64? { 0 }
        final class Handles { var of: [UInt16: [UInt8]] = [:] }
        let handles = Handles()
        func setHandle(_ id: DomainID, _ handle: [UInt8]) -> XenError? {
            handles.of[id.raw] = handle
            return nil
        }
        func setVCPUContext(_ id: DomainID, vcpu: Int, _ context: VCPUContext?) -> XenError? { nil }
        func setVCPUAffinity(_ id: DomainID, vcpu: Int, hard: UInt64) -> UInt64? { hard }
        func cleanCaches(_ id: DomainID, frames first: UInt64, count: UInt64) -> XenError? { nil }
        final class ConsoleReads { var asked: [(max: UInt32, index: UInt32, incremental: Bool, clear: Bool)] = [] }
        let consoleReads = ConsoleReads()
        func readConsole(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                         _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? {
            consoleReads.asked.append((max, index, incremental, clear))
            // "(tern) up\n" from position 40, in two pieces as a wrapped ring gives it.
            let text = Array("(tern) up\n".utf8)
            guard max >= 10 else { return (0, 40) }
            let ok = text.withUnsafeBufferPointer { all in
                copy(0, UnsafeBufferPointer(rebasing: all[0 ..< 4])) && copy(4, UnsafeBufferPointer(rebasing: all[4...]))
            }
            return ok ? (10, 50) : nil
        }
    }

    private func sysctl(_ command: UInt32, version: UInt32 = sysctlInterfaceVersion,
                        _ fill: (inout XenSysctl) -> Void = { _ in }) -> FakeGuestMemory {
        var memory = FakeGuestMemory()
        memory.map(arg)
        var op = XenSysctl()
        op.command = command
        op.interfaceVersion = version
        fill(&op)
        _ = memory.write(op, to: VirtualAddress(arg))
        return memory
    }

    private func perform(_ memory: inout FakeGuestMemory, privileged: Bool = true, host: Host = Host()) -> XenError? {
        Sysctl.perform(VirtualAddress(arg), &memory, privileged: privileged, host)
    }

    private func answer(_ memory: FakeGuestMemory) -> XenSysctl {
        var op = XenSysctl()
        var m = memory
        _ = m.read(&op, from: VirtualAddress(arg))
        return op
    }

    @Test func structuresAreLaidOutAsXen417() {
        #expect(MemoryLayout<XenSysctl>.size == 136)
        #expect(MemoryLayout<SysctlPhysinfo>.size == 112)
        #expect(MemoryLayout<SysctlPhysinfo>.offset(of: \.totalPages) == 40)
        #expect(MemoryLayout<SysctlPhysinfo>.offset(of: \.maxFrame) == 72)
        #expect(MemoryLayout<SysctlPhysinfo>.offset(of: \.hardwareCapabilities) == 80)
        #expect(MemoryLayout<SysctlGetDomainInfoList>.size == 24)
        #expect(MemoryLayout<SysctlGetDomainInfoList>.offset(of: \.maxDomains) == 4)
        #expect(MemoryLayout<SysctlGetDomainInfoList>.offset(of: \.buffer) == 8)
        #expect(MemoryLayout<SysctlGetDomainInfoList>.offset(of: \.domainCount) == 16)
        #expect(MemoryLayout<XenDomainInfo>.size == 120)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.flags) == 4)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.totalPages) == 8)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.cpuTime) == 56)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.onlineVCPUs) == 64)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.handle) == 76)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.cpupool) == 92)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.guestAddressBits) == 96)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.gicVersion) == 104)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.spis) == 108)
        #expect(MemoryLayout<XenDomainInfo>.offset(of: \.clockFrequency) == 112)
        #expect(MemoryLayout<XenDomctl>.size == 144)
        #expect(MemoryLayout<SysctlDebugKeys>.size == 16)
        #expect(MemoryLayout<SysctlDebugKeys>.offset(of: \.count) == 8)
        #expect(MemoryLayout<SysctlSchedulerOp>.size == 32)
        #expect(MemoryLayout<SysctlSchedulerOp>.offset(of: \.command) == 8)
        #expect(MemoryLayout<SysctlSchedulerOp>.offset(of: \.ratelimitMicroseconds) == 16)
    }

    /// `xl sched-credit2` (no domain) reads the pool's ratelimit; `-s -r N` sets it: credit2's range
    /// or 0, pool 0 only, the scheduler that pool runs, get or put only, each with Xen's error.
    @Test func schedulerOpReadsAndSetsTheRatelimit() {
        let host = Host()
        func op(_ command: UInt32, pool: UInt32 = 0, scheduler: UInt32 = Sysctl.schedulerID, limit: UInt32 = 0)
            -> (XenError?, UInt32) {
            var memory = sysctl(SysctlCommand.schedulerOp.rawValue) { o in
                var s = SysctlSchedulerOp()
                s.command = command
                s.pool = pool
                s.schedulerID = scheduler
                s.ratelimitMicroseconds = limit
                o.setPayload(s)
            }
            let error = perform(&memory, host: host)
            return (error, answer(memory).payload(as: SysctlSchedulerOp.self).ratelimitMicroseconds)
        }
        #expect(op(SysctlSchedulerOp.getinfo) == (nil, 1000))
        #expect(op(SysctlSchedulerOp.putinfo, limit: 250) == (nil, 250))
        #expect(host.parameters.ratelimit == 250)
        #expect(op(SysctlSchedulerOp.getinfo) == (nil, 250))
        #expect(op(SysctlSchedulerOp.putinfo, limit: 99).0 == .EINVAL)
        #expect(op(SysctlSchedulerOp.putinfo, limit: 500_001).0 == .EINVAL)
        #expect(op(SysctlSchedulerOp.putinfo, limit: 500_000) == (nil, 500_000))
        #expect(op(SysctlSchedulerOp.putinfo, limit: 0) == (nil, 0))
        #expect(op(SysctlSchedulerOp.getinfo, pool: 1).0 == .ESRCH)
        #expect(op(SysctlSchedulerOp.getinfo, scheduler: 5).0 == .EINVAL)
        #expect(op(2).0 == .EINVAL)
        #expect(host.parameters.ratelimit == 0)
    }

    /// `xl debug-keys`: each key handled in order, as typed; a key past the caller's memory is -EFAULT
    /// after the ones before it.
    @Test func debugKeysArePressedInOrder() {
        let host = Host()
        var memory = sysctl(SysctlCommand.debugKeys.rawValue) { o in
            var k = SysctlDebugKeys()
            k.keys = list
            k.count = 3
            o.setPayload(k)
        }
        memory.map(list)
        for (i, key) in "qmh".utf8.enumerated() { _ = memory.write(key, to: VirtualAddress(list + UInt64(i))) }
        #expect(perform(&memory, host: host) == nil)
        #expect(host.parameters.keys == Array("qmh".utf8))
        var past = sysctl(SysctlCommand.debugKeys.rawValue) { o in
            var k = SysctlDebugKeys()
            k.keys = list + 4094
            k.count = 3
            o.setPayload(k)
        }
        past.map(list)
        #expect(perform(&past, host: host) == .EFAULT)
        #expect(host.parameters.keys.count == 5)
    }

    /// Xen's order: the copy, the version, the privilege, the command.
    @Test func badRequestsGetXensErrors() {
        var memory = sysctl(SysctlCommand.physinfo.rawValue, version: 0x14)
        #expect(perform(&memory) == .EACCES)
        memory = sysctl(SysctlCommand.physinfo.rawValue)
        #expect(perform(&memory, privileged: false) == .EPERM)
        memory = sysctl(SysctlCommand.physinfo.rawValue, version: 0x14)
        #expect(perform(&memory, privileged: false) == .EACCES)
        memory = sysctl(99)
        #expect(perform(&memory) == .ENOSYS)
        #expect(perform(&memory, privileged: false) == .EPERM)
        var unmapped = FakeGuestMemory()
        #expect(Sysctl.perform(VirtualAddress(arg), &unmapped, privileged: true, Host()) == .EFAULT)
        // A structure that runs off its page is not read at all.
        var cut = FakeGuestMemory()
        cut.map(arg)
        #expect(Sysctl.perform(VirtualAddress(arg + 4096 - 100), &cut, privileged: true, Host()) == .EFAULT)
    }

    @Test func physinfoDescribesTheMachineAsXenOnArmDoes() {
        var memory = sysctl(SysctlCommand.physinfo.rawValue)
        #expect(perform(&memory) == nil)
        let p = answer(memory).payload(as: SysctlPhysinfo.self)
        #expect(p.cpus == 2 && p.maxCPUID == 1 && p.threadsPerCore == 1 && p.coresPerSocket == 1)
        #expect(p.nodes == 1 && p.maxNodeID == 0)
        #expect(p.cpuKHz == 62_500)
        #expect(p.totalPages == 262_144 && p.freePages == 100_000 && p.maxFrame == 0x7FFFF)
        #expect(p.capabilities == 1 << 0 | 1 << 3 | 1 << 8)        // hvm, hap, gnttab_v1
        #expect(answer(memory).command == SysctlCommand.physinfo.rawValue)
    }

    @Test func theSchedulerIsCredit2() {
        var memory = sysctl(SysctlCommand.schedID.rawValue)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: UInt32.self) == 6)
    }

    private func infoList(first: UInt16, max: UInt32, mapped: Bool = true) -> FakeGuestMemory {
        var memory = sysctl(SysctlCommand.getdomaininfolist.rawValue) { op in
            var l = SysctlGetDomainInfoList()
            l.firstDomain = first
            l.maxDomains = max
            l.buffer = list
            op.setPayload(l)
        }
        if mapped { memory.map(list) }
        return memory
    }

    private func entry(_ memory: FakeGuestMemory, _ i: Int) -> XenDomainInfo {
        var info = XenDomainInfo()
        var m = memory
        _ = m.read(&info, from: VirtualAddress(list + UInt64(i * 120)))
        return info
    }

    @Test func getdomaininfolistListsDomainsFromTheFirstAsked() {
        var memory = infoList(first: 0, max: 10)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlGetDomainInfoList.self).domainCount == 3)
        let dom0 = entry(memory, 0)
        #expect(dom0.domain == 0 && dom0.totalPages == 131_072 && dom0.onlineVCPUs == 2 && dom0.maxVCPUID == 1)
        #expect(dom0.flags == XenDomainInfo.hvmGuest | XenDomainInfo.hap | XenDomainInfo.running)
        #expect(dom0.cpuTime == 5_000_000 && dom0.gicVersion == 2 && dom0.guestAddressBits == 39)
        let shutDown = entry(memory, 1)
        #expect(shutDown.domain == 3)
        // Shut down with reason 0 (poweroff), every vCPU waiting.
        #expect(shutDown.flags == XenDomainInfo.hvmGuest | XenDomainInfo.hap | XenDomainInfo.shutdown | XenDomainInfo.blocked)
        #expect(entry(memory, 2).flags & XenDomainInfo.dying != 0)

        memory = infoList(first: 1, max: 1)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlGetDomainInfoList.self).domainCount == 1)
        #expect(entry(memory, 0).domain == 3)
        memory = infoList(first: 8, max: 10)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlGetDomainInfoList.self).domainCount == 0)
        // A buffer with nothing behind it.
        memory = infoList(first: 0, max: 10, mapped: false)
        #expect(perform(&memory) == .EFAULT)
    }

    @Test func aDomainWithoutOnlineVCPUsIsNeitherRunningNorBlocked() {
        let info = XenDomainInfo(DomainSummary(id: DomainID(2), running: false, allBlocked: true, onlineVCPUs: 0))
        #expect(info.flags == XenDomainInfo.hvmGuest | XenDomainInfo.hap)
    }

    @Test func theShutdownReasonTravelsInTheFlags() {
        let info = XenDomainInfo(DomainSummary(id: DomainID(2), shutdownReason: 1))     // reboot
        #expect(info.flags >> XenDomainInfo.shutdownShift & 0xFF == 1)
    }

    @Test func topologyAndNUMAAreOneNodeOfSingleCoreCPUs() {
        var memory = sysctl(SysctlCommand.cputopoinfo.rawValue)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlCPUTopologyInfo.self).cpuCount == 2)    // a null handle: the count
        memory = sysctl(SysctlCommand.cputopoinfo.rawValue) { op in
            var t = SysctlCPUTopologyInfo()
            t.cpuCount = 8
            t.topology = list
            op.setPayload(t)
        }
        memory.map(list)
        memory.fill(list, count: 96)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlCPUTopologyInfo.self).cpuCount == 2)
        #expect(memory.bytes(at: list, count: 24) == [UInt8](repeating: 0, count: 24))
        #expect(memory.bytes(at: list + 24, count: 1) == [0xEE])            // no more than the machine's

        memory = sysctl(SysctlCommand.numainfo.rawValue) { op in
            var n = SysctlNUMAInfo()
            n.nodeCount = 4
            n.memoryInfo = list
            n.distance = list + 64
            op.setPayload(n)
        }
        memory.map(list)
        #expect(perform(&memory) == nil)
        #expect(answer(memory).payload(as: SysctlNUMAInfo.self).nodeCount == 1)
        #expect(memory.word64(at: list) == 262_144 << 12 && memory.word64(at: list + 8) == 100_000 << 12)
        #expect(memory.bytes(at: list + 64, count: 4) == [20, 0, 0, 0])
    }

    /// xl dmesg: the history's bytes land in the caller's buffer, count and index come back.
    @Test func readconsoleCopiesTheHistoryOut() {
        #expect(MemoryLayout<SysctlReadConsole>.size == 24)
        #expect(MemoryLayout<SysctlReadConsole>.offset(of: \.index) == 4)
        #expect(MemoryLayout<SysctlReadConsole>.offset(of: \.buffer) == 8)
        #expect(MemoryLayout<SysctlReadConsole>.offset(of: \.count) == 16)
        func request(count: UInt32, mapped: Bool = true) -> FakeGuestMemory {
            var memory = sysctl(SysctlCommand.readconsole.rawValue) { op in
                var r = SysctlReadConsole()
                r.buffer = list + 4090                   // the text crosses into the next page
                r.count = count
                (r.index, r.incremental, r.clear) = (33, 1, 1)
                op.setPayload(r)
            }
            if mapped {
                memory.map(list)
                memory.map(list + 4096)
            }
            return memory
        }
        var memory = request(count: 100)
        let host = Host()
        #expect(perform(&memory, host: host) == nil)
        // The request's fields reach the history as they were asked.
        #expect(host.consoleReads.asked.count == 1)
        #expect(host.consoleReads.asked.first.map { $0.max == 100 && $0.index == 33 && $0.incremental && $0.clear } == true)
        let answered = answer(memory).payload(as: SysctlReadConsole.self)
        #expect(answered.count == 10 && answered.index == 50)
        #expect(memory.bytes(at: list + 4090, count: 10) == Array("(tern) up\n".utf8))
        memory = request(count: 100, mapped: false)
        #expect(perform(&memory) == .EFAULT)
    }

    // MARK: domctl

    private func domctl(_ command: UInt32, domain: UInt16, version: UInt32 = domctlInterfaceVersion) -> FakeGuestMemory {
        var memory = FakeGuestMemory()
        memory.map(arg)
        var op = XenDomctl()
        op.command = command
        op.interfaceVersion = version
        op.domain = domain
        _ = memory.write(op, to: VirtualAddress(arg))
        return memory
    }

    /// Xen 4.17's getdomaininfo: the first domain at or above the ID, echoed in the domain field.
    @Test func getdomaininfoAnswersForTheFirstDomainFromTheID() {
        var memory = domctl(DomctlCommand.getdomaininfo.rawValue, domain: 4)
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, Host()) == nil)
        var op = XenDomctl()
        _ = memory.read(&op, from: VirtualAddress(arg))
        #expect(op.domain == 7 && op.payload(as: XenDomainInfo.self).domain == 7)
        memory = domctl(DomctlCommand.getdomaininfo.rawValue, domain: 8)
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, Host()) == .ESRCH)
        // A domU: no privilege, whether or not there is such a domain.
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: false, Host()) == .EPERM)
        memory = domctl(DomctlCommand.getdomaininfo.rawValue, domain: 0)
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: false, Host()) == .EPERM)
        memory = domctl(DomctlCommand.getdomaininfo.rawValue, domain: 0, version: 0x14)
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, Host()) == .EACCES)
        memory = domctl(1000, domain: 0)                                    // gdbsx, which Tern has not
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, Host()) == .ENOSYS)
        #expect(Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: false, Host()) == .EPERM)
    }
}

extension SysctlTests {
    /// One pool (0) with every CPU and domain, Xen's boot state: xl's cpupool-list and the default pool
    /// libxl looks up for every new domain.
    @Test func theOneCPUPoolHoldsEveryCPUAndDomain() {
        #expect(MemoryLayout<SysctlCPUPoolOp>.size == 40)
        #expect(MemoryLayout<SysctlCPUPoolOp>.offset(of: \.domainCount) == 20)
        #expect(MemoryLayout<SysctlCPUPoolOp>.offset(of: \.cpumap) == 24)
        #expect(MemoryLayout<SysctlCPUPoolOp>.offset(of: \.cpumapBits) == 32)
        func request(_ operation: UInt32, pool: UInt32, bits: UInt32) -> FakeGuestMemory {
            var memory = sysctl(SysctlCommand.cpupoolOp.rawValue) { op in
                var p = SysctlCPUPoolOp()
                p.operation = operation
                p.pool = pool
                p.cpumap = list
                p.cpumapBits = bits
                op.setPayload(p)
            }
            memory.map(list)
            memory.fill(list, count: 8)
            return memory
        }
        var memory = request(SysctlCPUPoolOp.info, pool: SysctlCPUPoolOp.anyPool, bits: 16)
        #expect(perform(&memory) == nil)
        let pool = answer(memory).payload(as: SysctlCPUPoolOp.self)
        #expect(pool.pool == 0 && pool.schedulerID == 6 && pool.domainCount == 3)
        #expect(memory.bytes(at: list, count: 3) == [0b11, 0, 0xEE])           // 16 bits: two bytes, CPUs 0 and 1
        memory = request(SysctlCPUPoolOp.info, pool: 1, bits: 8)
        #expect(perform(&memory) == .ENOENT)
        memory = request(SysctlCPUPoolOp.freeInfo, pool: 0, bits: 8)
        #expect(perform(&memory) == nil)
        #expect(memory.bytes(at: list, count: 2) == [0, 0xEE])                // no CPU outside the pool
        memory = request(1, pool: 0, bits: 8)                                  // create: not yet
        #expect(perform(&memory) == .ENOSYS)
    }
}

extension SysctlTests {
    /// xl pause / unpause: nested pauses, Xen's errors, and the paused flag xl list shows as 'p'.
    @Test func pausesNestAndShowInTheDomainInfo() {
        let host = Host()
        func domctl(_ command: DomctlCommand, _ domain: UInt16, privileged: Bool = true) -> XenError? {
            var memory = self.domctl(command.rawValue, domain: domain)
            return Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: privileged, host)
        }
        func pausedFlag(_ id: UInt16) -> Bool {
            host.domains(from: DomainID(id), limit: 1).map { XenDomainInfo($0).flags & XenDomainInfo.paused != 0 } == [true]
        }
        #expect(domctl(.pausedomain, 3) == nil && pausedFlag(3))
        #expect(domctl(.pausedomain, 3) == nil)
        #expect(domctl(.unpausedomain, 3) == nil && pausedFlag(3))           // one pause still outstanding
        #expect(domctl(.unpausedomain, 3) == nil && !pausedFlag(3))
        #expect(domctl(.unpausedomain, 3) == .EINVAL)                       // none outstanding
        #expect(domctl(.pausedomain, 0) == .EINVAL)                         // itself
        #expect(domctl(.pausedomain, 4) == .ESRCH)                          // no domain 4 (7 is not it)
        #expect(domctl(.pausedomain, 3, privileged: false) == .EPERM)
        for _ in 0 ..< 255 { _ = domctl(.pausedomain, 7) }
        #expect(domctl(.pausedomain, 7) == .EOVERFLOW)
    }
}

extension SysctlTests {
    @Test func destroyIsTheControlDomainsForAnotherDomain() {
        let host = Host()
        func destroy(_ domain: UInt16, privileged: Bool = true) -> XenError? {
            var memory = domctl(DomctlCommand.destroydomain.rawValue, domain: domain)
            return Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: privileged, host)
        }
        #expect(destroy(7) == nil)                  // a dying domain too: xl destroy lets go of it
        #expect(destroy(4) == .ESRCH)
        #expect(destroy(3, privileged: false) == .EPERM)
        #expect(destroy(0) == .EINVAL)
        #expect(host.destroyed.ids == [7])
    }

    /// init-dom0less names a boot-time domain's UUID with setdomainhandle: the 16 bytes as given, for
    /// an existing domain, by the control domain only.
    @Test func setdomainhandleGivesTheDomainItsUUID() {
        let host = Host()
        func set(_ domain: UInt16, privileged: Bool = true) -> XenError? {
            var memory = domctl(DomctlCommand.setdomainhandle.rawValue, domain: domain)
            var op = XenDomctl()
            _ = memory.read(&op, from: VirtualAddress(arg))
            op.setPayload((UInt32(0x0403_0201), UInt32(0x0807_0605), UInt32(0x0c0b_0a09), UInt32(0x100f_0e0d)))
            _ = memory.write(op, to: VirtualAddress(arg))
            return Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: privileged, host)
        }
        #expect(set(3) == nil)
        #expect(host.handles.of[3] == Array(1 ... 16))
        #expect(set(4) == .ESRCH)
        #expect(set(7, privileged: false) == .EPERM)
        #expect(host.handles.of.count == 1)
    }
}

extension SysctlTests {
    /// xl vcpu-list: each vCPU's state, time and CPU, and its hard affinity (soft is every CPU).
    @Test func vcpuInfoAndAffinityAreXens() {
        #expect(MemoryLayout<DomctlGetVCPUInfo>.size == 24)
        #expect(MemoryLayout<DomctlGetVCPUInfo>.offset(of: \.cpuTime) == 8)
        #expect(MemoryLayout<DomctlGetVCPUInfo>.offset(of: \.cpu) == 16)
        #expect(MemoryLayout<DomctlVCPUAffinity>.size == 40)
        #expect(MemoryLayout<DomctlVCPUAffinity>.offset(of: \.hardMap) == 8)
        #expect(MemoryLayout<DomctlVCPUAffinity>.offset(of: \.softMap) == 24)
        let host = Host()
        func ask(_ command: DomctlCommand, domain: UInt16 = 0, _ fill: (inout XenDomctl) -> Void) -> (XenError?, XenDomctl, FakeGuestMemory) {
            var memory = domctl(command.rawValue, domain: domain)
            var op = XenDomctl()
            _ = memory.read(&op, from: VirtualAddress(arg))
            fill(&op)
            _ = memory.write(op, to: VirtualAddress(arg))
            memory.map(list)
            memory.fill(list, count: 8)
            let error = Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, host)
            _ = memory.read(&op, from: VirtualAddress(arg))
            return (error, op, memory)
        }
        let (error, op, _) = ask(.getvcpuinfo) { $0.setPayload(UInt32(1)) }
        #expect(error == nil)
        let info = op.payload(as: DomctlGetVCPUInfo.self)
        #expect(info.vcpu == 1 && info.online == 1 && info.blocked == 1 && info.running == 0 && info.cpuTime == 2000 && info.cpu == 1)
        // Domain 0 has 2 vCPUs (its summary): vCPU 2 is past them; domain 3's vCPU 0 the host lacks.
        #expect(ask(.getvcpuinfo) { $0.setPayload(UInt32(2)) }.0 == .EINVAL)
        #expect(ask(.getvcpuinfo, domain: 3) { $0.setPayload(UInt32(0)) }.0 == .ESRCH)
        let (affinityError, _, memory) = ask(.getvcpuaffinity) { op in
            var a = DomctlVCPUAffinity()
            a.vcpu = 1
            a.flags = DomctlVCPUAffinity.hard | DomctlVCPUAffinity.soft
            (a.hardMap, a.hardBits) = (list, 8)
            (a.softMap, a.softBits) = (list + 4, 16)
            op.setPayload(a)
        }
        #expect(affinityError == nil)
        #expect(memory.bytes(at: list, count: 7) == [0b10, 0xEE, 0xEE, 0xEE, 0b11, 0, 0xEE])
        #expect(ask(.getvcpuaffinity) { op in
            var a = DomctlVCPUAffinity()
            a.flags = 4                                         // neither hard nor soft
            op.setPayload(a)
        }.0 == .EINVAL)
    }
}

extension SysctlTests {
    /// xl sched-credit2: get and set a domain's weight and cap, as credit2 takes them.
    @Test func credit2ParametersAreTheDomainsWeightAndCap() {
        #expect(MemoryLayout<DomctlSchedulerOp>.offset(of: \.weight) == 8)
        #expect(MemoryLayout<DomctlSchedulerOp>.offset(of: \.cap) == 10)
        let host = Host()
        func schedulerOp(_ command: UInt32, domain: UInt16 = 3, scheduler: UInt32 = 6, weight: UInt16 = 0,
                         cap: UInt16 = 0) -> (XenError?, DomctlSchedulerOp) {
            var memory = domctl(DomctlCommand.schedulerOp.rawValue, domain: domain)
            var op = XenDomctl()
            _ = memory.read(&op, from: VirtualAddress(arg))
            var request = DomctlSchedulerOp()
            (request.schedulerID, request.command, request.weight, request.cap) = (scheduler, command, weight, cap)
            op.setPayload(request)
            _ = memory.write(op, to: VirtualAddress(arg))
            let error = Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: true, host)
            _ = memory.read(&op, from: VirtualAddress(arg))
            return (error, op.payload(as: DomctlSchedulerOp.self))
        }
        let first = schedulerOp(DomctlSchedulerOp.getinfo)
        #expect(first.0 == nil && first.1.weight == 256 && first.1.cap == 0)
        #expect(schedulerOp(DomctlSchedulerOp.putinfo, weight: 512, cap: 50).0 == nil)
        let after = schedulerOp(DomctlSchedulerOp.getinfo)
        #expect(after.1.weight == 512 && after.1.cap == 50)
        #expect(schedulerOp(DomctlSchedulerOp.putinfo, weight: 0, cap: 0).0 == nil)      // weight kept, cap gone
        #expect(host.parameters.of[3]! == (512, 0))
        #expect(schedulerOp(DomctlSchedulerOp.putinfo, cap: 101).0 == .EINVAL)          // 1 vCPU: 100% at most
        #expect(schedulerOp(DomctlSchedulerOp.getinfo, scheduler: 5).0 == .EINVAL)      // credit is not its scheduler
        #expect(schedulerOp(3).0 == .EINVAL)                                            // per-vCPU parameters
    }
}
