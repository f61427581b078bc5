import Testing
@testable import TernCore

/// xen_version's queries against a fake guest memory: the answers Linux reads, and the errors a bad
/// pointer or an unprivileged caller gets (the hostile guest checks the same through the trap path).
@Suite struct XenVersionOpTests {
    let domU = XenVersionOp.Caller(privileged: false, directMapped: false)
    let dom0 = XenVersionOp.Caller(privileged: true, directMapped: true)

    func query(_ command: XenVersionCommand, _ arg: UInt64, _ memory: inout FakeGuestMemory,
               caller: XenVersionOp.Caller? = nil) -> Int64 {
        Int64(bitPattern: XenVersionOp.query(command.rawValue, VirtualAddress(arg), &memory, caller: caller ?? domU))
    }

    @Test func versionAndPageSizeNeedNoMemory() {
        var m = FakeGuestMemory()
        #expect(query(.version, 0, &m) == 4 << 16 | 17)
        #expect(query(.pagesize, 0, &m) == 4096)
        #expect(query(.build_id, 0x1000, &m) == -1)             // EPERM: denied to a domU, as Xen's dummy XSM
        #expect(query(.build_id, 0x1000, &m, caller: dom0) == -61)  // ENODATA: built without one
        #expect(Int64(bitPattern: XenVersionOp.query(11, VirtualAddress(0), &m, caller: domU)) == -38)
    }

    @Test func stringsAreNulPaddedInXensShapes() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        m.fill(0x1000, count: 17)
        #expect(query(.extraversion, 0x1000, &m) == 0)
        #expect(m.bytes(at: 0x1000, count: 17) == Array("-tern".utf8) + [UInt8](repeating: 0, count: 11) + [0xEE])
        // struct xen_compile_info: compiler[64] compile_by[16] compile_domain[32] compile_date[32].
        m.map(0x2000)
        m.fill(0x2000, count: 145)
        #expect(query(.compile_info, 0x2000, &m) == 0)
        #expect(m.bytes(at: 0x2000, count: 21) == Array("Swift 6.3 (Embedded)".utf8) + [0])
        #expect(m.bytes(at: 0x2000 + 64, count: 5) == Array("tern".utf8) + [0])
        #expect(m.bytes(at: 0x2000 + 80, count: 64).allSatisfy { $0 == 0 })
        #expect(m.bytes(at: 0x2000 + 144, count: 1) == [0xEE])   // nothing past the structure
        #expect(query(.changeset, 0x3000 - 64, &m) == 0)
        #expect(m.bytes(at: 0x3000 - 64, count: 11) == Array("tern-0.1.0".utf8) + [0])
    }

    @Test func aCapabilitiesBufferAcrossAPageBoundaryNeedsBothPages() {
        var m = FakeGuestMemory()
        m.map(0x4000)
        // 1024 bytes from 0x4C00 end at 0x5000 exactly: fine. From 0x4E00 they need 0x5000 too.
        #expect(query(.capabilities, 0x4C00, &m) == 0)
        #expect(m.bytes(at: 0x4C00, count: 17) == Array("xen-3.0-aarch64 ".utf8) + [0])
        #expect(query(.capabilities, 0x4E00, &m) == -14)
        m.map(0x5000)
        #expect(query(.capabilities, 0x4E00, &m) == 0)
    }

    @Test func badPointersGetEFAULT() {
        var m = FakeGuestMemory()
        m.map(0x1000, writable: false)
        for command in [XenVersionCommand.extraversion, .compile_info, .capabilities, .changeset,
                        .platform_parameters, .guest_handle, .get_features] {
            #expect(query(command, 0x9000, &m) == -14, "\(command) at an unmapped address")
        }
        // Readable but not writable: get_features reads its index, then cannot answer.
        #expect(query(.get_features, 0x1000, &m) == -14)
        #expect(query(.extraversion, 0x1000, &m) == -14)
        // A misaligned feature_info is refused rather than read across words.
        m.map(0x2000)
        #expect(query(.get_features, 0x2002, &m) == -14)
    }

    @Test func featuresSayWhatTheCallerIs() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(query(.get_features, 0x1000, &m) == 0)
        let plain = m.bytes(at: 0x1004, count: 4).enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
        #expect(plain & 1 << XenFeature.auto_translated_physmap.rawValue != 0)
        #expect(plain & 1 << XenFeature.not_direct_mapped.rawValue != 0)
        #expect(plain & 1 << XenFeature.dom0.rawValue == 0)
        #expect(XenVersionOp.features(dom0) & 1 << XenFeature.dom0.rawValue != 0)
        #expect(XenVersionOp.features(dom0) & 1 << XenFeature.direct_mapped.rawValue != 0)
        #expect(XenVersionOp.features(dom0) & 1 << XenFeature.not_direct_mapped.rawValue == 0)
        // Submaps other than 0 are empty.
        _ = m.store32(VirtualAddress(0x1100), 1)
        _ = m.store32(VirtualAddress(0x1104), 0xFFFF_FFFF)
        #expect(query(.get_features, 0x1100, &m) == 0)
        #expect(m.load32(VirtualAddress(0x1104)) == 0)
    }

    @Test func onlyTheControlDomainReadsTheCommandLine() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        m.fill(0x1000, count: 1025)
        #expect(query(.commandline, 0x1000, &m) == 0)            // as Xen: "<denied>" and its NUL, no more
        #expect(m.bytes(at: 0x1000, count: 10) == Array("<denied>".utf8) + [0, 0xEE])
        #expect(query(.commandline, 0x10_0000, &m) == -14)        // EFAULT where nothing is mapped
        #expect(query(.commandline, 0x1000, &m, caller: dom0) == 0)
        #expect(m.bytes(at: 0x1000, count: 1024).allSatisfy { $0 == 0 })
        #expect(m.bytes(at: 0x1000 + 1024, count: 1) == [0xEE])
        // With a control domain's size in it, as xl's autoballoon test reads it.
        let line = Array("dom0_mem=512M dom0_max_vcpus=2".utf8)
        let sized = XenVersionOp.Caller(privileged: true, directMapped: false, dom0MemoryMiB: 512, dom0VCPUs: 2)
        #expect(query(.commandline, 0x1000, &m, caller: sized) == 0)
        #expect(m.bytes(at: 0x1000, count: line.count + 1) == line + [0])
        #expect(m.bytes(at: 0x1000 + UInt64(line.count), count: 1024 - line.count).allSatisfy { $0 == 0 })
    }
}
