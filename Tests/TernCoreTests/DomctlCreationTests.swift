import Testing
@testable import TernCore

/// The domctls libxl builds an Arm domain with, as xl create sends them (layouts measured with clang
/// on Xen 4.17's domctl.h and arch-arm.h), and as a domU or a bad request would.
@Suite struct DomctlCreationTests {
    private let arg: UInt64 = 0x8000_0000
    private let buffer: UInt64 = 0x9000_0000

    final class Host: ToolstackHost {
        var machine = MachineSummary(cpus: 2, counterFrequency: 62_500_000, totalPages: 262_144, freePages: 100_000,
                                     maxFrame: 0x7FFFF)
        var all: [DomainSummary] = [DomainSummary(id: DomainID(0), onlineVCPUs: 2, vcpus: 2)]
        var created: [DomainCreation] = []
        var maximum: [UInt16: UInt64] = [:]
        var contexts: [(DomainID, Int, VCPUContext?)] = []
        var affinities: [(DomainID, Int, UInt64)] = []
        var cleaned: [(DomainID, UInt64, UInt64)] = []
        var schedulerRatelimit: UInt32 = 1000
        func setHandle(_ id: DomainID, _ handle: [UInt8]) -> XenError? { nil }
        func setSchedulerRatelimit(_ microseconds: UInt32) { schedulerRatelimit = microseconds }
        func debugKey(_ key: UInt8) {}

        func domains(from first: DomainID, limit: Int) -> [DomainSummary] {
            Array(all.filter { $0.id.raw >= first.raw }.sorted { $0.id.raw < $1.id.raw }.prefix(limit))
        }
        func create(_ request: DomainCreation) -> Result<DomainID, XenError> {
            let id = request.requested ?? DomainID(UInt16(all.count))
            guard !all.contains(where: { $0.id == id }) else { return .failure(.EEXIST) }
            created.append(request)
            all.append(DomainSummary(id: id, paused: true, onlineVCPUs: 0, vcpus: request.vcpus))
            return .success(id)
        }
        func setMaximumMemory(_ id: DomainID, pages: UInt64) -> XenError? {
            maximum[id.raw] = pages
            return nil
        }
        /// Each domain's table pool; its tables hold 3 pages.
        var pools: [UInt16: UInt64] = [:]
        func setTablePool(_ id: DomainID, pages: UInt64) -> XenError? {
            pools[id.raw] = max(pages, 3)
            return pages < 3 ? .ENOMEM : nil
        }
        func tablePool(_ id: DomainID) -> UInt64? { pools[id.raw] ?? 0 }
        func setVCPUContext(_ id: DomainID, vcpu: Int, _ context: VCPUContext?) -> XenError? {
            contexts.append((id, vcpu, context))
            return nil
        }
        func setVCPUAffinity(_ id: DomainID, vcpu: Int, hard: UInt64) -> UInt64? {
            affinities.append((id, vcpu, hard))
            return hard
        }
        func cleanCaches(_ id: DomainID, frames first: UInt64, count: UInt64) -> XenError? {
            cleaned.append((id, first, count))
            return nil
        }
        func schedulerParameters(_ id: DomainID) -> (weight: UInt32, cap: UInt32) { (256, 0) }
        func setSchedulerParameters(_ id: DomainID, weight: UInt32, cap: UInt32) {}
        func vcpu(_ id: DomainID, _ index: Int) -> VCPUSummary? { nil }
        func destroy(_ id: DomainID) -> XenError? { nil }
        func pause(_ id: DomainID) -> XenError? { nil }
        func unpause(_ id: DomainID) -> XenError? { nil }
        func readConsole(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                         _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? { nil }
    }

    private func run<T>(_ command: DomctlCommand, domain: UInt16, _ payload: T, host: Host, privileged: Bool = true,
                        memory: inout FakeGuestMemory) -> (XenError?, XenDomctl) {
        memory.map(arg)
        var op = XenDomctl()
        op.command = command.rawValue
        op.interfaceVersion = domctlInterfaceVersion
        op.domain = domain
        op.setPayload(payload)
        _ = memory.write(op, to: VirtualAddress(arg))
        let result = Domctl.perform(VirtualAddress(arg), &memory, caller: DomainID(0), privileged: privileged, host)
        var answer = XenDomctl()
        _ = memory.read(&answer, from: VirtualAddress(arg))
        return (result, answer)
    }

    /// What libxl's libxl__domain_make asks on Arm: hvm and hap, the vCPUs, grant v1, the native GIC.
    private func xlRequest(vcpus: UInt32 = 2) -> DomctlCreateDomain {
        var c = DomctlCreateDomain()
        c.handle = (0x1122_3344, 0x5566_7788, 0x99AA_BBCC, 0xDDEE_FF00)
        c.flags = DomctlCreateDomain.hvm | DomctlCreateDomain.hap
        c.maxVCPUs = vcpus
        c.maxEventPort = 1023
        c.maxGrantFrames = -1
        c.maxMaptrackFrames = -1
        c.grantOptions = 1
        c.gicVersion = DomctlCreateDomain.gicNative
        return c
    }

    @Test func structuresAreLaidOutAsXen417() {
        #expect(MemoryLayout<DomctlCreateDomain>.size == 68)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.flags) == 20)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.maxVCPUs) == 28)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.grantOptions) == 44)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.cpupool) == 52)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.gicVersion) == 56)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.teeType) == 58)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.spis) == 60)
        #expect(MemoryLayout<DomctlCreateDomain>.offset(of: \.clockFrequency) == 64)
        #expect(MemoryLayout<DomctlCacheFlush>.size == 16)
    }

    @Test func createdomainMakesTheDomainXlAsksForAndSaysWhichGIC() {
        let host = Host()
        var memory = FakeGuestMemory()
        var (result, answer) = run(.createdomain, domain: 0x7FF4, xlRequest(), host: host, memory: &memory)
        #expect(result == nil)
        // DOMID_INVALID asks for the next free ID; the answer names it, with GICv3 for "native".
        #expect(host.created.count == 1 && host.created[0].requested == nil && host.created[0].vcpus == 2)
        #expect(host.created[0].handle == [0x44, 0x33, 0x22, 0x11, 0x88, 0x77, 0x66, 0x55, 0xCC, 0xBB, 0xAA, 0x99, 0x00, 0xFF, 0xEE, 0xDD])
        #expect(answer.domain == 1)
        #expect(answer.payload(as: DomctlCreateDomain.self).gicVersion == DomctlCreateDomain.gicV3)
        // An ID asked for is the one made; one in use is -EEXIST.
        (result, answer) = run(.createdomain, domain: 9, xlRequest(vcpus: 1), host: host, memory: &memory)
        #expect(result == nil && answer.domain == 9 && host.created.last?.requested == DomainID(9))
        (result, _) = run(.createdomain, domain: 9, xlRequest(), host: host, memory: &memory)
        #expect(result == .EEXIST)
        // A domU may not create domains.
        (result, _) = run(.createdomain, domain: 0x7FF4, xlRequest(), host: host, privileged: false, memory: &memory)
        #expect(result == .EPERM)
        #expect(host.created.count == 2)
    }

    @Test func createdomainRefusesWhatArmOrTernHasNot() {
        let host = Host()
        var memory = FakeGuestMemory()
        func refused(_ change: (inout DomctlCreateDomain) -> Void) -> XenError? {
            var c = xlRequest()
            change(&c)
            return run(.createdomain, domain: 0x7FF4, c, host: host, memory: &memory).0
        }
        #expect(refused { $0.flags = DomctlCreateDomain.hvm } == .EINVAL)                    // no hap
        #expect(refused { $0.flags |= 1 << 5 } == .EINVAL)                                  // an IOMMU
        #expect(refused { $0.maxVCPUs = 0 } == .EINVAL)
        #expect(refused { $0.maxVCPUs = UInt32(TernLimits.maximumVCPUsPerDomain + 1) } == .EINVAL)
        #expect(refused { $0.gicVersion = 1 } == .EINVAL)                                   // GICv2
        #expect(refused { $0.grantOptions = 2 } == .EINVAL)                                 // grant v2
        #expect(refused { $0.maxGrantFrames = Int32(GrantTableOp.maximumFrames + 1) } == .EINVAL)
        #expect(refused { $0.teeType = 1 } == .EINVAL)
        #expect(refused { $0.cpupool = 3 } == .ENOENT)
        #expect(host.created.isEmpty)
        #expect(refused { $0.maxGrantFrames = 4 } == nil)
        #expect(host.created.last?.grantFrames == 4)
    }

    /// max_maptrack_frames as Xen 4.17's grant_table_init takes it: any negative value is the default
    /// (1024 frames), more than that default is -EINVAL, 0 a domain that may map no grant at all.
    @Test func createdomainTakesTheMaptrackLimit() {
        let host = Host()
        var memory = FakeGuestMemory()
        func made(_ frames: Int32, grantFrames: Int32 = -1) -> (XenError?, DomainCreation?) {
            var c = xlRequest()
            c.maxMaptrackFrames = frames
            c.maxGrantFrames = grantFrames
            let before = host.created.count
            let result = run(.createdomain, domain: 0x7FF4, c, host: host, memory: &memory).0
            return (result, host.created.count > before ? host.created.last : nil)
        }
        #expect(made(-1).1?.maptrackFrames == 1024)
        #expect(made(-7).1?.maptrackFrames == 1024)
        #expect(made(0).1?.maptrackFrames == 0)
        #expect(made(16).1?.maptrackFrames == 16)
        #expect(made(1024).1?.maptrackFrames == 1024)
        #expect(made(1025).0 == .EINVAL && made(Int32.max).0 == .EINVAL)
        // The same rule for max_grant_frames: negative is the default.
        #expect(made(-1, grantFrames: -2).1?.grantFrames == GrantTableOp.maximumFrames)
    }

    @Test func setvcpucontextStartsTheVCPUWhereTheBuilderSays() {
        let host = Host()
        var memory = FakeGuestMemory()
        _ = run(.createdomain, domain: 0x7FF4, xlRequest(), host: host, memory: &memory)
        // vcpu_arm64's context: x0 the device tree, pc the kernel, EL1h with DAIF masked, online.
        memory.map(buffer)
        var words = [UInt64](repeating: 0, count: 44)
        words[0] = 1
        words[1] = 0x4800_0000
        words[32] = 0x4020_0000
        words[33] = 0x3C5
        words[40] = 0x00C5_0078
        _ = words.withUnsafeBytes { memory.copy(to: VirtualAddress(buffer), from: $0.baseAddress!, count: 352) }
        var (result, _) = run(.setvcpucontext, domain: 1, (UInt32(0), UInt32(0), buffer), host: host, memory: &memory)
        #expect(result == nil)
        let c = host.contexts.last?.2
        #expect(host.contexts.last?.0 == DomainID(1) && host.contexts.last?.1 == 0)
        #expect(c?.x[0] == 0x4800_0000 && c?.pc == 0x4020_0000 && c?.cpsr == 0x3C5 && c?.sctlr == 0x00C5_0078 && c?.online == true)
        // AArch32 (cpsr bit 4) is not a mode Tern runs; a vCPU past the domain's is -EINVAL, the
        // caller's own domain too; an unreadable context -EFAULT; a null handle resets.
        _ = memory.write(UInt64(0x1D3), to: VirtualAddress(buffer + 264))
        (result, _) = run(.setvcpucontext, domain: 1, (UInt32(0), UInt32(0), buffer), host: host, memory: &memory)
        #expect(result == .EINVAL)
        (result, _) = run(.setvcpucontext, domain: 1, (UInt32(2), UInt32(0), buffer), host: host, memory: &memory)
        #expect(result == .EINVAL)
        (result, _) = run(.setvcpucontext, domain: 0, (UInt32(0), UInt32(0), buffer), host: host, memory: &memory)
        #expect(result == .EINVAL)
        (result, _) = run(.setvcpucontext, domain: 1, (UInt32(0), UInt32(0), UInt64(0xDEAD_0000)), host: host, memory: &memory)
        #expect(result == .EFAULT)
        (result, _) = run(.setvcpucontext, domain: 1, (UInt32(1), UInt32(0), UInt64(0)), host: host, memory: &memory)
        #expect(result == nil && host.contexts.count == 2 && host.contexts.last?.2 == nil)
    }

    @Test func theBuildersOtherRequests() {
        let host = Host()
        var memory = FakeGuestMemory()
        _ = run(.createdomain, domain: 0x7FF4, xlRequest(), host: host, memory: &memory)
        // max_vcpus repeats createdomain's count, max_mem is KiB, the address size is 64 bits.
        #expect(run(.maxVCPUs, domain: 1, UInt32(2), host: host, memory: &memory).0 == nil)
        #expect(run(.maxVCPUs, domain: 1, UInt32(3), host: host, memory: &memory).0 == .EINVAL)
        #expect(run(.maxMem, domain: 1, UInt64(132 * 1024), host: host, memory: &memory).0 == nil)
        #expect(host.maximum[1] == 33 * 1024)
        #expect(run(.setAddressSize, domain: 1, UInt32(64), host: host, memory: &memory).0 == nil)
        #expect(run(.setAddressSize, domain: 1, UInt32(32), host: host, memory: &memory).0 == .EINVAL)
        #expect(run(.getAddressSize, domain: 1, UInt32(0), host: host, memory: &memory).1.payload(as: UInt32.self) == 64)
        // The paging mempool is the domain's table pool, in bytes: whole pages only, and not below
        // what its tables hold.
        #expect(run(.setPagingMempoolSize, domain: 1, UInt64(2 << 20), host: host, memory: &memory).0 == nil)
        #expect(host.pools[1] == 512)
        #expect(run(.getPagingMempoolSize, domain: 1, UInt64(0), host: host, memory: &memory).1.payload(as: UInt64.self) == 2 << 20)
        #expect(run(.setPagingMempoolSize, domain: 1, UInt64(100), host: host, memory: &memory).0 == .EINVAL)
        #expect(run(.setPagingMempoolSize, domain: 1, UInt64(4096), host: host, memory: &memory).0 == .ENOMEM)
        #expect(run(.getPagingMempoolSize, domain: 1, UInt64(0), host: host, memory: &memory).1.payload(as: UInt64.self) == 3 * 4096)
        #expect(run(.getPagingMempoolSize, domain: 5, UInt64(0), host: host, memory: &memory).0 == .ESRCH)
        // cacheflush: a range past Xen's limit, or wrapping, is refused before anything is cleaned.
        #expect(run(.cacheflush, domain: 1, (UInt64(0x40000), UInt64(16)), host: host, memory: &memory).0 == nil)
        #expect(host.cleaned.count == 1 && host.cleaned[0].1 == 0x40000 && host.cleaned[0].2 == 16)
        #expect(run(.cacheflush, domain: 1, (UInt64(0), DomctlCacheFlush.maximumFrames + 1), host: host, memory: &memory).0 == .EINVAL)
        #expect(run(.cacheflush, domain: 1, (UInt64.max, UInt64(2)), host: host, memory: &memory).0 == .EINVAL)
        #expect(host.cleaned.count == 1)
        // Node affinity: the one node, or nothing at all.
        memory.map(buffer)
        _ = memory.write(UInt8(1), to: VirtualAddress(buffer))
        #expect(run(.setnodeaffinity, domain: 1, (buffer, UInt32(8)), host: host, memory: &memory).0 == nil)
        _ = memory.write(UInt8(0), to: VirtualAddress(buffer))
        #expect(run(.setnodeaffinity, domain: 1, (buffer, UInt32(8)), host: host, memory: &memory).0 == .EINVAL)
        // Every one of them names an existing domain, and only the control domain may.
        #expect(run(.maxMem, domain: 5, UInt64(1024), host: host, memory: &memory).0 == .ESRCH)
        #expect(run(.maxMem, domain: 1, UInt64(1024), host: host, privileged: false, memory: &memory).0 == .EPERM)
    }

    @Test func setvcpuaffinityTakesTheHardMapAndWritesBackWhatTheVCPUGot() {
        let host = Host()
        var memory = FakeGuestMemory()
        _ = run(.createdomain, domain: 0x7FF4, xlRequest(), host: host, memory: &memory)
        memory.map(buffer)
        memory.fill(buffer, count: 16)
        _ = memory.write(UInt8(0b110), to: VirtualAddress(buffer))        // CPUs 1 and 2; the machine has 2
        var a = DomctlVCPUAffinity()
        a.vcpu = 1
        a.flags = DomctlVCPUAffinity.hard | DomctlVCPUAffinity.soft
        a.hardMap = buffer
        a.hardBits = 16
        a.softMap = buffer + 8
        a.softBits = 8
        #expect(run(.setvcpuaffinity, domain: 1, a, host: host, memory: &memory).0 == nil)
        #expect(host.affinities.count == 1 && host.affinities[0].1 == 1 && host.affinities[0].2 == 0b10)
        #expect(memory.bytes(at: buffer, count: 2) == [0b10, 0])
        #expect(memory.bytes(at: buffer + 8, count: 2) == [0b10, 0xEE])
        // No CPU of the machine, or a vCPU it has not: -EINVAL.
        _ = memory.write(UInt8(0b100), to: VirtualAddress(buffer))
        #expect(run(.setvcpuaffinity, domain: 1, a, host: host, memory: &memory).0 == .EINVAL)
        a.vcpu = 2
        #expect(run(.setvcpuaffinity, domain: 1, a, host: host, memory: &memory).0 == .EINVAL)
        #expect(host.affinities.count == 1)
    }
}
