import Testing
@testable import TernCore

/// ICC_SGI1R_EL1 writes against a fake domain: which vCPUs get the SGI. Nothing outside the domain's
/// vCPUs, nor an offline one, is ever named (and the fake traps on a question about a vCPU it does not
/// have).
@Suite struct VirtualSGITests {
    /// An SGI register value naming `list` in Aff1 group `aff1`.
    func targetList(_ intid: UInt64, _ list: UInt64, aff1: UInt64 = 0) -> UInt64 { intid << 24 | aff1 << 16 | list }

    func targets(_ value: UInt64, from sender: Int = 0, _ d: FakeVCPUs) -> [Int] {
        indices(VirtualSGI.targets(of: value, from: sender, d))
    }

    @Test func theTargetListNamesVCPUsByAffinity() {
        let d = FakeVCPUs(4)
        #expect(VirtualSGI.intid(of: targetList(5, 0b1010)) == 5)
        #expect(targets(targetList(5, 0b1010), d) == [1, 3])
        #expect(targets(targetList(15, 0b1), d) == [0])                   // to itself
        for index in 0 ..< 4 { #expect(targets(CPUAffinity(vcpu: index).sgi(3), d) == [index]) }
        #expect(targets(targetList(1, 0xFFFF), d) == [0, 1, 2, 3])        // not past the last vCPU
    }

    @Test func everyoneElseMeansTheOtherOnlineVCPUs() {
        let d = FakeVCPUs(4, online: [0, 1, 3])
        #expect(targets(VirtualSGI.everyoneElse | 2 << 24 | 0xFFFF, from: 1, d) == [0, 3])   // IRM: the list is ignored
        #expect(targets(VirtualSGI.everyoneElse, FakeVCPUs(1)) == [])
    }

    /// As Xen's vgic_to_sgi: offline and nonexistent targets are left out, the rest still get it.
    @Test func offlineAndMissingTargetsAreLeftOut() {
        #expect(targets(targetList(1, 0xFFFF), FakeVCPUs(3, online: [0, 2])) == [0, 2])
        // The sender is on however the fake sees it: it is the one running.
        #expect(targets(targetList(1, 0b11), from: 1, FakeVCPUs(3, online: [0])) == [0, 1])
    }

    @Test func otherGroupsReachVCPUsPastSixteenAndNobodyElse() {
        let d = FakeVCPUs(20)
        #expect(targets(targetList(0, 0b1001, aff1: 1), d) == [16, 19])
        #expect(targets(targetList(0, 0b10_0000, aff1: 1), d) == [])       // vCPU 21: none
        #expect(targets(targetList(0, 0b1, aff1: 2), d) == [])             // vCPU 32: none
        #expect(targets(targetList(0, 0b1, aff1: 255), d) == [])
        #expect(targets(1 << 44 | 0b1, d) == [])                           // range selector 1: Aff0 16
        #expect(targets(1 << 32 | 0b1, d) == [])                           // Aff2
        #expect(targets(1 << 48 | 0b1, d) == [])                           // Aff3
        #expect(targets(targetList(0, 0xFFFF, aff1: 3), FakeVCPUs(64)) == Array(48 ..< 64))
    }

    /// The self-IPI shortcut agrees with `targets`: a value it takes names the sender alone.
    @Test func namesOnlyAgreesWithTargets() {
        let d = FakeVCPUs(20)
        for index in 0 ..< 20 {
            let own = CPUAffinity(vcpu: index).sgi(7)
            #expect(VirtualSGI.namesOnly(index, own) == (index < 16))
            #expect(targets(own, from: index, d) == [index])
        }
        #expect(!VirtualSGI.namesOnly(0, targetList(1, 0b11)))
        #expect(!VirtualSGI.namesOnly(0, VirtualSGI.everyoneElse | 1))
        #expect(!VirtualSGI.namesOnly(0, 1 << 16 | 1))                     // vCPU 16 is 0.0.1.0
        var random = SeededRandom(state: 0x1F)
        var agreed = 0
        for _ in 0 ..< 20_000 {
            let index = Int(random.next() % 20)
            let value = sgiValue(&random, near: index)
            if VirtualSGI.namesOnly(index, value) {
                #expect(targets(value, from: index, d) == [index])
                agreed += 1
            }
        }
        #expect(agreed > 1000)          // the loop reached the shortcut often
    }

    /// A register value of the kind a guest writes, near vCPU `index`: mostly a target list in its own
    /// or a neighbouring group naming a few vCPUs (often itself), now and then IRM, a range selector,
    /// Aff2 or Aff3, or anything at all.
    func sgiValue(_ random: inout SeededRandom, near index: Int) -> UInt64 {
        if random.next() % 16 == 0 { return random.next() }
        var list: UInt64 = random.next() % 2 == 0 ? 1 << UInt64(index & 15) : 0
        for _ in 0 ..< random.next() % 3 { list |= 1 << (random.next() % 16) }
        let aff1 = random.next() % 4 == 0 ? random.next() % 3 : UInt64(index >> 4)
        var value = (random.next() % 16) << 24 | aff1 << 16 | list
        if random.next() % 4 == 0 { value |= VirtualSGI.everyoneElse }
        if random.next() % 8 == 0 { value |= (random.next() % 16) << 44 }
        if random.next() % 8 == 0 { value |= (random.next() % 256) << 32 }
        if random.next() % 8 == 0 { value |= (random.next() % 256) << 48 }
        return value
    }

    /// Whatever the guest writes, only the domain's online vCPUs are named, never the sender by IRM.
    @Test func anyValueNamesOnlyOnlineVCPUsOfTheDomain() {
        var random = SeededRandom(state: 0x5617)
        let d = FakeVCPUs(21, online: [0, 2, 3, 17, 20])
        var named = 0, byList = 0
        for _ in 0 ..< 20_000 {
            let sender = [0, 2, 3, 17, 20][Int(random.next() % 5)]
            let value = sgiValue(&random, near: sender)
            let bits = VirtualSGI.targets(of: value, from: sender, d)
            for vcpu in indices(bits) { #expect(d.isOnline(vcpu)) }
            if value & VirtualSGI.everyoneElse != 0 { #expect(bits & 1 << UInt64(sender) == 0) } else if bits != 0 { byList += 1 }
            named += bits.nonzeroBitCount
        }
        #expect(named > 10_000 && byList > 3_000)       // target lists, not only IRM, were reached
    }
}
