// The time of day, which the hypervisor itself has no use for but its guests do: a Xen guest on Arm
// sets its clock at boot from shared_info's wc_* fields (the wall time at which its own monotonic
// clock read zero), and the control domain, which owns the machine's real-time clock, corrects the
// hypervisor's idea of it with platform_op(XENPF_settime64). Times here are nanoseconds: wall time
// since 1970, and hypervisor time since boot.

public struct WallClock: Sendable {
    /// The wall time when hypervisor time was zero; nil until something said what time it is.
    public private(set) var atBoot: UInt64?

    public init() {}

    /// The clock reads `wall` at hypervisor time `t`. A wall time before boot time would be before
    /// 1970: such a setting is ignored.
    public mutating func set(wall: UInt64, at t: Nanoseconds) {
        guard wall >= t.raw else { return }
        atBoot = wall - t.raw
    }

    /// The wall time at hypervisor time `t`, as shared_info wants it; 1970 when nobody set the clock.
    public func wall(at t: Nanoseconds) -> (seconds: UInt64, nanoseconds: UInt32) {
        let ns = (atBoot ?? 0) &+ t.raw
        return (ns / 1_000_000_000, UInt32(ns % 1_000_000_000))
    }

    /// XENPF_settime64 from a domain whose monotonic clock read zero at hypervisor time `start`:
    /// `systemTime` is that clock when the wall clock read `seconds` s + `nanoseconds` ns (which may
    /// pass a second).
    public mutating func set(seconds: UInt64, nanoseconds: UInt32, systemTime: UInt64, domainStart start: Nanoseconds) {
        // Nanoseconds past a second carry into it, as Xen's do_settime adds them; a time beyond 64 bits
        // of nanoseconds is ignored.
        guard seconds < UInt64.max / 1_000_000_000 else { return }
        let (wall, overflow) = (seconds * 1_000_000_000).addingReportingOverflow(UInt64(nanoseconds))
        guard !overflow else { return }
        set(wall: wall, at: start + Nanoseconds(systemTime))
    }
}
