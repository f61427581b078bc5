import Testing
@testable import TernCore

@Test func alignHelpers() {
    #expect(alignUp(0x1001, 0x1000) == 0x2000)
    #expect(alignDown(0x1fff, 0x1000) == 0x1000)
    #expect(HostPhysicalAddress(0x1234).pageOffset == 0x234)
}

@Suite struct FrameNumberTests {
    @Test func framesAndAddressesConvertAndGuestFramesStayWithin48Bits() {
        #expect(GuestFrameNumber(0x40123).address == GuestPhysicalAddress(0x4012_3000))
        #expect(GuestPhysicalAddress(0x4012_3FFF).frame == GuestFrameNumber(0x40123))
        #expect(HostFrameNumber(0x8_0000).address == HostPhysicalAddress(0x8000_0000))
        #expect(HostPhysicalAddress(0x8000_0ABC).frame == HostFrameNumber(0x8_0000))
        #expect(GuestFrameNumber(guest: (1 << 36) - 1)?.address == GuestPhysicalAddress(0xFFFF_FFFF_F000))
        #expect(GuestFrameNumber(guest: 1 << 36) == nil)
        #expect(GuestFrameNumber(guest: .max) == nil)
    }
}
