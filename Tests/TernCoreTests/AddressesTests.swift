import Testing
@testable import TernCore

@Test func alignHelpers() {
    #expect(alignUp(0x1001, 0x1000) == 0x2000)
    #expect(alignDown(0x1fff, 0x1000) == 0x1000)
    #expect(HostPhysicalAddress(0x1234).pageOffset == 0x234)
}
