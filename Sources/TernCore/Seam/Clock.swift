// The seam for time: Xen system time, nanoseconds since boot on the one system counter, which every
// deadline a guest passes (a poll's timeout, a single-shot timer) is measured against. In the hypervisor
// it is CNTPCT_EL0 scaled by SystemCounter; in host tests a clock the test sets.

public protocol Clock {
    func now() -> Nanoseconds
}
