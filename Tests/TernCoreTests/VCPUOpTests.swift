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
