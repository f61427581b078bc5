// The architected timer: the counter is the hypervisor's clock, and the EL2 physical timer (CNTHP) is
// the one alarm it sets for itself (slice ends, sleeping vCPUs' deadlines).
import TernArchAsm

public enum GenericTimer {
    @inline(__always) public static var now: UInt64 { read_cntpct_el0() }
    public static var frequency: UInt64 { read_cntfrq_el0() }

    /// Guests see the same counter (CNTVOFF = 0) and may read it; their physical timer traps.
    public static func configureForGuests() {
        write_cntvoff_el2(0)
        write_cnthctl_el2(1 << 0)    // EL1PCTEN
        write_cntv_ctl_el0(0)
    }

    public static func setAlarm(at ticks: UInt64) {
        write_cnthp_cval_el2(ticks)
        write_cnthp_ctl_el2(1)
    }

    public static func cancelAlarm() { write_cnthp_ctl_el2(0) }
}
