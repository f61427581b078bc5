import Testing
@testable import TernCore

/// hvm_op against a fake guest memory: the parameters Linux reads, and what a guest may not do.
@Suite struct HVMOpTests {
    static let me: UInt16 = 3
    let parameters = HVMOp.Parameters(callbackIRQ: callbackIRQParameter(ppi: 31), consolePFN: 0x3FFFF, consoleEvtchn: 1)

    /// get_param for `index` of domain `dom` with the structure at 0x1000: the result and the value.
    func get(_ index: UInt32, dom: UInt16 = domidSelf, at arg: UInt64 = 0x1000, _ m: inout FakeGuestMemory) -> (Int64, UInt64) {
        _ = m.store32(VirtualAddress(arg), UInt32(dom))
        _ = m.store32(VirtualAddress(arg + 4), index)
        let r = HVMOp.handle(HVMOpCommand.get_param.rawValue, VirtualAddress(arg), &m,
                             caller: DomainID(Self.me), parameters: { parameters })
        return (Int64(bitPattern: r), m.pages[arg & ~0xFFF] == nil ? 0 : m.word64(at: arg + 8))
    }

    @Test func aGuestReadsItsOwnParameters() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(get(HVMParam.callback_irq.rawValue, &m) == (0, 2 << 56 | 2 << 8 | 31))
        #expect(get(HVMParam.console_pfn.rawValue, &m) == (0, 0x3FFFF))
        #expect(get(HVMParam.console_evtchn.rawValue, dom: Self.me, &m) == (0, 1))
        #expect(get(HVMParam.store_pfn.rawValue, &m) == (0, 0))
        #expect(get(HVMParam.store_evtchn.rawValue, &m) == (0, 0))
    }

    @Test func anotherDomainsParametersAnUnknownIndexAndBadPointersAreRefused() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(get(HVMParam.console_pfn.rawValue, dom: 0, &m).0 == -1)           // EPERM
        #expect(get(HVMParam.console_pfn.rawValue, dom: Self.me + 1, &m).0 == -1)
        #expect(get(99, &m).0 == -22)                                            // EINVAL
        // The value's word on a page the guest may not write: EFAULT, after the index was read.
        m.map(0x2000)
        var ro = m
        ro.map(0x3000, writable: false)
        #expect(get(HVMParam.console_pfn.rawValue, at: 0x2FF8, &ro).0 == -14)
        var none = FakeGuestMemory()
        #expect(HVMOp.handle(HVMOpCommand.get_param.rawValue, VirtualAddress(0x5000), &none,
                             caller: DomainID(Self.me), parameters: { parameters }) == XenError.EFAULT.returnValue)
    }

    @Test func setParamIsRefusedAndOtherCommandsAreUnknown() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(HVMOp.handle(HVMOpCommand.set_param.rawValue, VirtualAddress(0x1000), &m,
                             caller: DomainID(Self.me), parameters: { parameters }) == XenError.EPERM.returnValue)
        #expect(HVMOp.handle(7, VirtualAddress(0x1000), &m,
                             caller: DomainID(Self.me), parameters: { parameters }) == XenError.ENOSYS.returnValue)
    }
}
