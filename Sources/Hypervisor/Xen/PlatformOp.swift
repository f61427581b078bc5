// The time of day for the guests: read once from the board's PL031 real-time clock at boot, set again
// by the control domain (XENPF_settime64, which Linux's dom0 sends when its clock is set, from the
// RTC it is given), and published in every Xen-aware domain's shared_info as wc_sec/wc_nsec.
import TernArchAsm
import TernCore

nonisolated(unsafe) var wallClock = WallClock()
nonisolated(unsafe) private var wallClockLock: UInt32 = 0

/// The PL031's data register holds seconds since 1970.
func readRealTimeClock() {
    guard let rtc = platform.rtc else { return }
    let seconds = UInt64(tern_load32(rtc.raw))
    let t = now()
    withSpinLock(&wallClockLock) { wallClock.set(wall: seconds * 1_000_000_000, at: t) }
}

/// Writes the wall time at which `d`'s monotonic clock read zero (its start) into its shared_info,
/// under Xen's version protocol: odd while the fields change. The caller keeps `d` alive: it is the
/// caller's own domain, or the scheduler lock is held.
func publishWallClock(_ d: Domain) {
    let (seconds, nanoseconds) = withSpinLock(&wallClockLock) { wallClock.wall(at: d.startedAt) }
    d.events.withLock { e in
        guard let s = e.sharedInfo?.raw else { return }
        let version = tern_load32(s + UInt64(SharedInfoLayout.wcVersion))
        tern_store32(s + UInt64(SharedInfoLayout.wcVersion), version | 1)
        tern_memory_barrier()
        tern_store32(s + UInt64(SharedInfoLayout.wcSec), UInt32(truncatingIfNeeded: seconds))
        tern_store32(s + UInt64(SharedInfoLayout.wcNsec), nanoseconds)
        tern_store32(s + UInt64(SharedInfoLayout.wcSecHi), UInt32(truncatingIfNeeded: seconds >> 32))
        tern_memory_barrier()
        tern_store32(s + UInt64(SharedInfoLayout.wcVersion), (version | 1) &+ 1)
    }
}

/// platform_op(struct xen_platform_op *): TernCore's PlatformOp reads it; the clock is set here.
func platformOp(_ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    switch PlatformOp.decode(arg, &memory, privileged: v.domain.privileged) {
    case .failure(let error):
        return error.returnValue
    case .success(.settime64(let seconds, let nanoseconds, let systemTime)):
        let start = v.domain.startedAt
        withSpinLock(&wallClockLock) {
            wallClock.set(seconds: seconds, nanoseconds: nanoseconds, systemTime: systemTime, domainStart: start)
        }
        // Under the scheduler lock, so no domain's memory (its shared_info) is released meanwhile.
        lockScheduler()
        for case let d? in domains where d.xenPV && !d.dying { publishWallClock(d) }
        unlockScheduler()
        return 0
    }
}
