import Testing
@testable import TernCore

/// hvm_op against a fake guest memory: the parameters Linux reads, what the toolstack sets for a domain
/// it builds (libxl's alloc_magic_pages), and what a guest may not do.
@Suite struct HVMOpTests {
    static let me: UInt16 = 3

    final class Host: HVMOpHost {
        let caller: DomainID
        let privileged: Bool
        var values: [UInt16: [UInt64]] = [:]
        init(caller: UInt16 = HVMOpTests.me, privileged: Bool = false) {
            self.caller = DomainID(caller)
            self.privileged = privileged
            var mine = [UInt64](repeating: 0, count: HVMOp.parameterCount)
            mine[Int(HVMParam.callback_irq.rawValue)] = callbackIRQParameter(ppi: 31)
            mine[Int(HVMParam.console_pfn.rawValue)] = 0x3FFFF
            mine[Int(HVMParam.console_evtchn.rawValue)] = 1
            values[HVMOpTests.me] = mine
            values[0] = [UInt64](repeating: 0, count: HVMOp.parameterCount)
        }
        func parameter(of id: DomainID, _ index: Int) -> UInt64? { values[id.raw]?[index] }
        func setParameter(of id: DomainID, _ index: Int, to value: UInt64) -> Bool {
            guard values[id.raw] != nil else { return false }
            values[id.raw]![index] = value
            return true
        }
    }

    /// `command` for `index` of domain `dom` with the structure at `arg`: the result and the value word.
    func op(_ command: HVMOpCommand, _ index: UInt32, dom: UInt16 = domidSelf, value: UInt64 = 0, at arg: UInt64 = 0x1000,
            _ m: inout FakeGuestMemory, _ host: Host = Host()) -> (Int64, UInt64) {
        _ = m.store32(VirtualAddress(arg), UInt32(dom))
        _ = m.store32(VirtualAddress(arg + 4), index)
        _ = m.write(value, to: VirtualAddress(arg + 8))
        let r = HVMOp.handle(command.rawValue, VirtualAddress(arg), &m, host)
        return (Int64(bitPattern: r), m.pages[arg & ~0xFFF] == nil ? 0 : m.word64(at: arg + 8))
    }

    @Test func aGuestReadsItsOwnParameters() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(op(.get_param, HVMParam.callback_irq.rawValue, &m) == (0, 2 << 56 | 2 << 8 | 31))
        #expect(op(.get_param, HVMParam.console_pfn.rawValue, &m) == (0, 0x3FFFF))
        #expect(op(.get_param, HVMParam.console_evtchn.rawValue, dom: Self.me, &m) == (0, 1))
        #expect(op(.get_param, HVMParam.store_pfn.rawValue, &m) == (0, 0))
        #expect(op(.get_param, HVMParam.store_evtchn.rawValue, &m) == (0, 0))
    }

    @Test func anotherDomainsParametersAnUnknownIndexAndBadPointersAreRefused() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        #expect(op(.get_param, HVMParam.console_pfn.rawValue, dom: 0, &m).0 == -1)           // EPERM
        #expect(op(.get_param, HVMParam.console_pfn.rawValue, dom: Self.me + 1, &m).0 == -1)
        #expect(op(.get_param, 39, &m).0 == -22)                                            // EINVAL
        // The value's word on a page the guest may not write: EFAULT, after the index was read.
        m.map(0x2000)
        var ro = m
        ro.map(0x3000, writable: false)
        #expect(op(.get_param, HVMParam.console_pfn.rawValue, at: 0x2FF8, &ro).0 == -14)
        var none = FakeGuestMemory()
        #expect(HVMOp.handle(HVMOpCommand.get_param.rawValue, VirtualAddress(0x5000), &none, Host()) == XenError.EFAULT.returnValue)
        #expect(HVMOp.handle(7, VirtualAddress(0x1000), &m, Host()) == XenError.ENOSYS.returnValue)
    }

    @Test func theToolstackSetsAndReadsTheParametersOfADomainItBuilds() {
        var m = FakeGuestMemory()
        m.map(0x1000)
        let dom0 = Host(caller: 0, privileged: true)
        // What libxl sets for a new domain: its console and xenstore pages and ports.
        #expect(op(.set_param, HVMParam.store_pfn.rawValue, dom: Self.me, value: 0x39001, &m, dom0).0 == 0)
        #expect(op(.set_param, HVMParam.store_evtchn.rawValue, dom: Self.me, value: 2, &m, dom0).0 == 0)
        #expect(op(.set_param, 28, dom: Self.me, value: 0x39002, &m, dom0).0 == 0)        // MONITOR_RING_PFN
        #expect(dom0.values[Self.me]?[1] == 0x39001 && dom0.values[Self.me]?[2] == 2 && dom0.values[Self.me]?[28] == 0x39002)
        #expect(op(.get_param, HVMParam.store_pfn.rawValue, dom: Self.me, &m, dom0) == (0, 0x39001))
        // No such domain, or no such parameter.
        #expect(op(.set_param, 1, dom: 9, value: 1, &m, dom0).0 == -3)                      // ESRCH
        #expect(op(.get_param, 1, dom: 9, &m, dom0).0 == -3)
        #expect(op(.set_param, 39, dom: Self.me, value: 1, &m, dom0).0 == -22)
        // A domU sets nothing, its own parameters included.
        let domU = Host()
        #expect(op(.set_param, HVMParam.store_pfn.rawValue, value: 5, &m, domU).0 == -1)
        #expect(op(.set_param, HVMParam.store_pfn.rawValue, dom: 0, value: 5, &m, domU).0 == -1)
        #expect(domU.values[Self.me]?[1] == 0 && domU.values[0]?[1] == 0)
    }
}
