import Testing
@testable import TernCore

// `read` is mutating (the hypervisor reads in place), which #expect cannot call on its own.
private func read(_ d: inout VirtualDistributor, _ offset: Int, _ size: Int) -> UInt64? { d.read(offset: offset, size: size) }
private func read(_ r: inout VirtualRedistributor, _ offset: Int, _ size: Int) -> UInt64? { r.read(offset: offset, size: size) }
private func write(_ d: inout VirtualDistributor, _ offset: Int, _ size: Int, _ value: UInt64) -> (base: Int, bits: UInt32)? {
    d.write(offset: offset, size: size, value: value)
}
private func write(_ r: inout VirtualRedistributor, _ offset: Int, _ size: Int, _ value: UInt64) -> UInt32 {
    r.write(offset: offset, size: size, value: value)
}

private func raise(_ d: inout VirtualDistributor, _ intid: Int) -> Bool { d.raise(intid) }
private func raise(_ r: inout VirtualRedistributor, _ intid: Int) -> Bool { r.raise(intid) }

/// The emulated GICv3 distributor and redistributor, register by register as a guest programs them
/// (the offsets and fields are the GICv3 architecture's).
@Suite struct VirtualGICTests {
    @Test func distributorIdentifiesItselfAsXensDoes() {
        var d = VirtualDistributor()
        #expect(read(&d, 0x0008, 4) == VirtualGICIdentity.iidr)
        // TYPER: ITLinesNumber = SPIs / 32, IDbits = 9 (10 bits of INTID).
        #expect(read(&d, 0x0004, 4) == UInt64(VirtualDistributor.spiCount / 32) | 9 << 19)
        // CTLR: ARE and DS fixed on; the guest's group enables kept.
        #expect(read(&d, 0x0000, 4) == 1 << 6 | 1 << 4)
        d.write(offset: 0x0000, size: 4, value: 0xFFFF_FFFF)
        #expect(read(&d, 0x0000, 4) == 0x3 | 1 << 6 | 1 << 4)
        #expect(d.groupEnabled)
        #expect(read(&d, 0xFFE8, 4) == VirtualGICIdentity.pidr2)
    }

    @Test func accessesOfWidthsTheArchitectureForbidsAbort() {
        var d = VirtualDistributor()
        #expect(read(&d, 0x0000, 2) == nil)
        #expect(read(&d, 0x0004, 1) == nil)
        // Priorities may be read a byte at a time; an unknown register of a legal width reads as zero.
        #expect(read(&d, 0x0421, 1) == 0)
        #expect(read(&d, 0x0E00, 4) == 0)
    }

    @Test func anSPIIsDeliverableOnlyWhenEnabledAndRoutedToTheVCPU() {
        var d = VirtualDistributor()
        let spi = 40
        // Pending but not enabled: kept, not deliverable.
        #expect(!raise(&d, spi))
        #expect(d.deliverable(to: 0) == 0)
        // ISENABLER1 covers INTIDs 32-63; enabling a pending one reports it ready.
        let ready = d.write(offset: 0x0104, size: 4, value: 1 << UInt64(spi - 32))
        #expect(ready?.base == 32 && ready?.bits == 1 << UInt32(spi - 32))
        #expect(d.deliverable(to: 0) == 1 << UInt64(spi - 32))
        // IROUTER<n> (8 bytes at 0x6100 + 8n for INTID 32 + n): to vCPU 1 (Aff0 = 1).
        d.write(offset: 0x6100 + 8 * (spi - 32), size: 8, value: 1)
        #expect(d.target(of: spi) == 1)
        #expect(d.deliverable(to: 0) == 0)
        #expect(d.deliverable(to: 1) == 1 << UInt64(spi - 32))
        // vCPU 17 is 0.0.1.1; an affinity no vCPU has (Aff0 16) routes to nobody, as the GIC
        // architecture says (Xen would keep the old route).
        d.write(offset: 0x6100 + 8 * (spi - 32), size: 8, value: 0x101)
        #expect(d.target(of: spi) == 17)
        #expect(d.deliverable(to: 1) == 0)
        d.write(offset: 0x6100 + 8 * (spi - 32), size: 8, value: 0x10)
        #expect(d.target(of: spi) == .max)
        #expect((0 ..< 32).allSatisfy { d.deliverable(to: $0) == 0 })
        // Interrupt_Routing_Mode 1 (any vCPU) goes to vCPU 0.
        d.write(offset: 0x6100 + 8 * (spi - 32), size: 8, value: 1 << 31 | 1)
        #expect(d.target(of: spi) == 0)
        // Handed to the vCPU: no longer pending. ICPENDR clears a pending one too.
        d.delivered(spi)
        #expect(d.deliverable(to: 0) == 0)
        #expect(raise(&d, spi))
        d.write(offset: 0x0284, size: 4, value: 1 << UInt64(spi - 32))
        #expect(d.deliverable(to: 0) == 0)
        // ICENABLER disables; a level line that falls before delivery is withdrawn.
        d.write(offset: 0x0184, size: 4, value: 1 << UInt64(spi - 32))
        #expect(!d.isEnabled(spi))
        d.write(offset: 0x0104, size: 4, value: 1 << UInt64(spi - 32))
        #expect(raise(&d, spi))
        d.lower(spi)
        #expect(d.deliverable(to: 0) == 0)
    }

    @Test func sgisAndPPIsAndOutOfRangeINTIDsAreNotTheDistributors() {
        var d = VirtualDistributor()
        // Word 0 of ISENABLER/ISPENDR is banked in the redistributors: the distributor ignores it.
        #expect(write(&d, 0x0100, 4, 0xFFFF_FFFF) == nil)
        #expect(read(&d, 0x0100, 4) == 0)
        #expect(!raise(&d, 27))
        #expect(!raise(&d, 32 + VirtualDistributor.spiCount))
        #expect(d.target(of: 32 + VirtualDistributor.spiCount) == 0)
        // ICFGR0 and ICFGR1 (SGIs, PPIs) are read-only here.
        d.write(offset: 0x0C00, size: 4, value: 0xFFFF_FFFF)
        #expect(read(&d, 0x0C00, 4) == 0)
        d.write(offset: 0x0C08, size: 4, value: 0x5555_5555)
        #expect(read(&d, 0x0C08, 4) == 0x5555_5555)
    }

    @Test func priorityBytesKeepTheirLanes() {
        var d = VirtualDistributor()
        d.write(offset: 0x0420, size: 4, value: 0x4030_2010)     // IPRIORITYR8: INTIDs 32-35
        #expect(d.priority(of: 32) == 0x10)
        #expect(d.priority(of: 35) == 0x40)
        d.write(offset: 0x0421, size: 1, value: 0xA0)
        #expect(read(&d, 0x0420, 4) == 0x4030_A010)
    }

    @Test func redistributorWakesAndReportsItsPlace() {
        var first = VirtualRedistributor(vcpu: 0, isLast: false)
        var last = VirtualRedistributor(vcpu: 3, isLast: true)
        // GICR_TYPER: affinity in the top half, processor number, Last for the final frame.
        #expect(read(&first, 0x0008, 8) == 0)
        #expect(read(&last, 0x0008, 8) == 3 << 32 | 3 << 8 | 1 << 4)
        // vCPU 18 is 0.0.1.2, as its MPIDR says.
        var eighteenth = VirtualRedistributor(vcpu: 18, isLast: false)
        #expect(read(&eighteenth, 0x0008, 8) == 0x102 << 32 | 18 << 8)
        #expect(read(&eighteenth, 0x000C, 4) == 0x102)
        // WAKER: asleep until the guest clears ProcessorSleep; ChildrenAsleep follows it.
        #expect(read(&first, 0x0014, 4) == 0x6)
        first.write(offset: 0x0014, size: 4, value: 0)
        #expect(read(&first, 0x0014, 4) == 0)
        // SGIs are edge-triggered (ICFGR0 reads 0b10 per INTID).
        #expect(read(&first, 0x10C00, 4) == 0xAAAA_AAAA)
    }

    @Test func aPPIIsDeliverableOnceEnabledAndUntilDelivered() {
        var r = VirtualRedistributor(vcpu: 0, isLast: true)
        let timer = 27
        #expect(!raise(&r, timer))
        #expect(r.deliverable == 0)
        // ISENABLER0 (in the SGI frame) enables it; it was pending, so it is ready now.
        #expect(r.write(offset: 0x10100, size: 4, value: 1 << UInt64(timer)) == 1 << UInt32(timer))
        #expect(r.deliverable == 1 << UInt32(timer))
        r.delivered(timer)
        #expect(r.deliverable == 0)
        // ISPENDR0 from the guest makes an enabled one deliverable; ICPENDR0 takes it back.
        #expect(r.write(offset: 0x10200, size: 4, value: 1 << UInt64(timer)) == 1 << UInt32(timer))
        r.write(offset: 0x10280, size: 4, value: 1 << UInt64(timer))
        #expect(r.deliverable == 0)
        #expect(!raise(&r, 32))
    }
}
