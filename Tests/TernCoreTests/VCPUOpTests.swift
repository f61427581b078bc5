import Testing
@testable import TernCore

@Suite struct VCPUOpTests {
    /// Where register_vcpu_info may put a vcpu_info: the hostile guest's misaligned and
    /// page-crossing requests, here without a boot.
    @Test func aVCPUInfoMustBeAlignedWithinOnePageOfTheGuestsSpace() {
        let size = UInt64(VCPUInfoLayout.size)
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 0)?.raw == 0x4012_3000)
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 0x40)?.raw == 0x4012_3040)
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 4096 - size)?.raw == 0x4012_4000 - size)
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 4096 - size + 8) == nil)     // crosses the page
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 4) == nil)                   // misaligned
        #expect(VCPUOp.vcpuInfoAddress(frame: 1 << 36, offset: 0) == nil)                   // beyond 48 bits
        // Only the low 32 bits are the offset (the rest is rsvd's): rsvd set does not move it.
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 0xFFFF_FFFF_0000_0040)?.raw == 0x4012_3040)
        #expect(VCPUOp.vcpuInfoAddress(frame: 0x40123, offset: 0xFFFF_FFF8) == nil)
    }
}

/// vcpu_op against a fake host: which vCPU a call names, what a plain guest may ask, and the
/// structures as vcpu.h lays them out.
@Suite struct VCPUOpHandleTests {
    final class Host: VCPUOpHost {
        var vcpuCount = 2
        var xenPV = true
        var infos: [(Int, GuestPhysicalAddress)] = []
        var areas: [(Int, VirtualAddress?)] = []
        func isOnline(_ vcpu: Int) -> Bool { vcpu == 0 }
        func registerVCPUInfo(_ vcpu: Int, at address: GuestPhysicalAddress) -> UInt64 {
            infos.append((vcpu, address))
            return 0
        }
        func registerRunstateArea(_ vcpu: Int, at address: VirtualAddress?) -> Bool {
            areas.append((vcpu, address))
            return address.map { $0.raw < 0x9000_0000 } ?? true
        }
        func runstateInfo(_ vcpu: Int) -> VCPURunstateInfo { VCPURunstateInfo((2, 1000, 10, 20, 30, 40)) }
    }

    let host = Host()
    var memory = FakeGuestMemory()
    static let arg: UInt64 = 0x3000

    init() { memory.map(Self.arg) }

    mutating func call(_ command: VCPUOpCommand, vcpu: UInt64 = 1, at arg: UInt64 = arg) -> Int64 {
        Int64(bitPattern: VCPUOp.handle(command.rawValue, vcpu, VirtualAddress(arg), &memory, host))
    }

    @Test func structuresHaveTheHeadersLayout() {
        #expect(MemoryLayout<VCPURegisterVCPUInfo>.size == 16)
        #expect(MemoryLayout<VCPURegisterVCPUInfo>.offset(of: \.offset) == 8)
        #expect(MemoryLayout<VCPURunstateInfo>.size == 48)
        #expect(MemoryLayout<VCPURunstateInfo>.offset(of: \.stateEntryTime) == 8)
        #expect(MemoryLayout<VCPURunstateInfo>.offset(of: \.time) == 16)
    }

    @Test mutating func theTargetMustBeAVCPUOfTheCaller() {
        #expect(call(.is_up, vcpu: 0) == 1 && call(.is_up, vcpu: 1) == 0)
        #expect(call(.is_up, vcpu: 2) == -2)                                  // ENOENT
        #expect(call(.up) == -22 && call(.down) == -22 && call(.initialise) == -22)   // PSCI's, on Arm
    }

    @Test mutating func vcpuInfoAndRunstateAreasArePlaced() {
        var info = VCPURegisterVCPUInfo()
        (info.mfn, info.offset) = (0x40123, 0x40)
        _ = memory.write(info, to: VirtualAddress(Self.arg))
        #expect(call(.register_vcpu_info) == 0)
        #expect(host.infos.count == 1 && host.infos[0].1 == GuestPhysicalAddress(0x4012_3040))
        info.offset = 0x44                                                    // not 8-byte aligned
        _ = memory.write(info, to: VirtualAddress(Self.arg))
        #expect(call(.register_vcpu_info) == -22 && host.infos.count == 1)
        _ = memory.write(UInt64(0x8000_1008), to: VirtualAddress(Self.arg))
        #expect(call(.register_runstate_memory_area) == 0)
        _ = memory.write(UInt64(0x8000_1004), to: VirtualAddress(Self.arg))
        #expect(call(.register_runstate_memory_area) == -22)                  // misaligned: not asked
        _ = memory.write(UInt64(0x9000_0000), to: VirtualAddress(Self.arg))
        #expect(call(.register_runstate_memory_area) == -14)                  // the host cannot reach it
        _ = memory.write(UInt64(0), to: VirtualAddress(Self.arg))
        #expect(call(.register_runstate_memory_area) == 0)                    // 0: no area any more
        #expect(host.areas.count == 3 && host.areas[2].1 == nil)
        #expect(call(.get_runstate_info) == 0)
        var answer = VCPURunstateInfo()
        _ = memory.read(&answer, from: VirtualAddress(Self.arg))
        #expect(answer == VCPURunstateInfo((2, 1000, 10, 20, 30, 40)))
        #expect(call(.get_runstate_info, at: 0x9000) == -14 && call(.register_vcpu_info, at: 0x9000) == -14)
    }

    @Test mutating func aPlainGuestHasNoneOfXensAreas() {
        host.xenPV = false
        #expect(call(.register_vcpu_info) == -22 && call(.register_runstate_memory_area) == -22)
        #expect(call(.get_runstate_info) == -22 && call(.is_up, vcpu: 0) == 1)
        #expect(host.infos.isEmpty && host.areas.isEmpty)
    }
}
