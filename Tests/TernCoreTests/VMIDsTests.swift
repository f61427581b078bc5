import Testing
@testable import TernCore

@Suite struct VMIDsTests {
    @Test func theWidthComesFromMMFR1() {
        #expect(VMIDs(mmfr1: 0).bits == 8)
        #expect(VMIDs(mmfr1: 0x0000_0000_0010_0122).bits == 16)     // VMIDBits = 0b0010
        #expect(VMIDs(mmfr1: 0x0000_0000_0010_0102).bits == 8)      // VMIDBits = 0 (Cortex-A57)
        #expect(VMIDs(mmfr1: 0xF0).bits == 8)                      // reserved values: 8, as Xen reads them
    }

    @Test func eightBitsHold255DomainsAndSixteenAsManyAsXensIDs() {
        #expect(VMIDs(bits: 8).domainLimit == 255)
        #expect(VMIDs(bits: 16).domainLimit == 0x7FF0)
        #expect(VMIDs.cortexA57.domainLimit == 255)
        // The last slot's VMID still fits the width, and none is 0.
        #expect(VMIDs(bits: 8).vmid(slot: 254) == 255)
        #expect(VMIDs(bits: 8).vmid(slot: 0) == 1)
    }

    @Test func sixteenBitsAreSwitchedOnInVTCR() {
        #expect(VMIDs(bits: 8).vtcrBits == 0)
        #expect(VMIDs(bits: 16).vtcrBits == 1 << 19)
    }
}
