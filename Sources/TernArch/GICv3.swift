// The host's GICv3, as the hypervisor drives it: physical interrupts are taken at EL2 and acknowledged
// through the system-register CPU interface; guests get theirs through list registers (ICH_LR<n>_EL2).
import TernArchAsm
import TernCore

public struct GICv3 {
    let distributor: UInt64
    let redistributors: UInt64
    let redistributorsSize: UInt64

    /// The interrupts the hypervisor itself uses.
    public static let kickSGI: UInt64 = 0
    public static let maintenancePPI: UInt32 = 25
    public static let hypervisorTimerPPI: UInt32 = 26
    public static let virtualTimerPPI: UInt32 = 27
    public static let spurious: UInt32 = 1020

    public init(distributor: HostPhysicalAddress, redistributors: HostPhysicalAddress, redistributorsSize: UInt64) {
        self.distributor = distributor.raw
        self.redistributors = redistributors.raw
        self.redistributorsSize = redistributorsSize
    }

    /// GICD_TYPER.RSS: SGIs can name CPUs whose Aff0 is 16 or more (ICC_SGI1R_EL1's range selector).
    public var supportsRangeSelector: Bool { tern_load32(distributor + 0x4) >> 26 & 1 != 0 }

    /// Once, on the boot CPU: affinity routing on, group 1 enabled, every SPI left disabled.
    public func initializeDistributor() {
        tern_store32(distributor + 0x0, 0)
        waitForWrites()
        tern_store32(distributor + 0x0, 1 << 4 | 1 << 1 | 1 << 0)   // ARE, EnableGrp1, EnableGrp0
        waitForWrites()
    }

    /// On every CPU: wake its redistributor, enable the PPIs/SGIs the hypervisor uses, and turn on the
    /// CPU interface (including the virtual one for guests).
    public func initializeCPU(affinity: CPUAffinity) {
        guard let rd = redistributor(affinity: affinity) else { return }
        var waker = tern_load32(rd + 0x14)
        waker &= ~UInt32(1 << 1)
        tern_store32(rd + 0x14, waker)
        while tern_load32(rd + 0x14) & (1 << 2) != 0 {}
        let sgi = rd + 0x10000
        tern_store32(sgi + 0x80, 0xFFFF_FFFF)           // all group 1
        for i in 0 ..< 8 { tern_store32(sgi + 0x400 + UInt64(i) * 4, 0x8080_8080) }
        let mine: UInt32 = 1 << Self.kickSGI | 1 << Self.maintenancePPI | 1 << Self.hypervisorTimerPPI
            | 1 << Self.virtualTimerPPI
        tern_store32(sgi + 0x100, mine)
        write_icc_sre_el2(0xF)                           // SRE, DFB, DIB, and EL1 may use ICC_SRE_EL1
        tern_isb()
        write_icc_pmr_el1(0xFF)
        write_icc_ctlr_el1(0)                            // EOI both drops priority and deactivates
        write_icc_igrpen1_el1(1)
        // The virtual CPU interface stays off, its list registers empty (they reset to UNKNOWN), until
        // the first vCPU is loaded here: nothing can assert a maintenance interrupt before then.
        for lr in 0 ..< min(Self.listRegisterCount, 4) { tern_write_lr(Int32(lr), 0) }
        write_ich_hcr_el2(0)
        tern_isb()
    }

    /// Routes an SPI the hypervisor handles itself (the console UART's) to one CPU and enables it.
    public func enableSPI(_ intid: UInt32, affinity: CPUAffinity) {
        let word = UInt64(intid / 32) * 4, bit = UInt32(1) << (intid % 32)
        tern_store32(distributor + 0x80 + word, tern_load32(distributor + 0x80 + word) | bit)     // group 1
        let priority = distributor + 0x400 + UInt64(intid & ~3)
        let shift = (intid & 3) * 8
        tern_store32(priority, tern_load32(priority) & ~(0xFF << shift) | 0x80 << shift)
        tern_store64(distributor + 0x6000 + UInt64(intid) * 8, affinity.raw)   // GICD_IROUTER: MPIDR's layout
        tern_store32(distributor + 0x100 + word, bit)
        waitForWrites()
    }

    /// The SGI/PPI frame of the redistributor of the CPU with `affinity`.
    public func sgiFrame(affinity: CPUAffinity) -> UInt64? {
        redistributor(affinity: affinity).map { $0 + 0x10000 }
    }

    /// Enables or disables a PPI at one CPU's redistributor (its SGI frame), waiting until a disable
    /// has taken effect, so the interrupt is not signalled again afterwards.
    public static func setPPI(_ intid: UInt32, enabled: Bool, sgiFrame: UInt64) {
        tern_store32(sgiFrame + (enabled ? 0x100 : 0x180), 1 << intid)
        if !enabled { while tern_load32(sgiFrame - 0x10000) & (1 << 3) != 0 {} }     // GICR_CTLR.RWP
    }

    private func redistributor(affinity: CPUAffinity) -> UInt64? {
        var rd = redistributors
        while rd < redistributors + redistributorsSize {
            let typer = tern_load64(rd + 0x8)
            if typer >> 32 == affinity.redistributorAffinity { return rd }
            if typer & (1 << 4) != 0 { break }           // Last
            rd += 0x20000
        }
        return nil
    }

    private func waitForWrites() {
        while tern_load32(distributor) & (1 << 31) != 0 {}
    }

    @inline(__always) public static func acknowledge() -> UInt32 { UInt32(truncatingIfNeeded: read_icc_iar1_el1()) & 0xFF_FFFF }
    @inline(__always) public static func endOfInterrupt(_ intid: UInt32) { write_icc_eoir1_el1(UInt64(intid)) }

    /// Interrupts a physical CPU so it reschedules; `sgi` is its CPUAffinity's `sgi(kickSGI)`.
    @inline(__always) public static func kick(sgi: UInt64) {
        write_icc_sgi1r_el1(sgi)
        tern_isb()
    }

    /// How many list registers this CPU's virtual interface has.
    public static var listRegisterCount: Int { Int(read_ich_vtr_el2() & 0x1F) + 1 }
}

/// A list-register value: a pure virtual interrupt, pending, group 1.
@inline(__always) public func listRegister(intid: UInt32, priority: UInt8) -> UInt64 {
    1 << 62 | 1 << 60 | UInt64(priority) << 48 | UInt64(intid)
}
