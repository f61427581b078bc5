// Time and sleeping with the virtual timer (PPI 27) through the virtual GIC.
import GuestKitAsm
import TernCore

nonisolated(unsafe) var timerFired: [Bool] = [Bool](repeating: false, count: 8)

/// Runs on vCPU 0 before guest_main: globals with initializers are set up lazily, and that must not
/// first happen on two vCPUs at once.
@_cdecl("guest_kit_init")
func guestKitInit() {
    timerFired[0] = false
}

public enum Timer {
    public static var ticks: UInt64 { read_cntvct_el0() }
    public static var frequency: UInt64 { read_cntfrq_el0() }
    public static var milliseconds: UInt64 { ticks / (frequency / 1000) }
    public static var nanoseconds: UInt64 { ticks / frequency * 1_000_000_000 + ticks % frequency * 1_000_000_000 / frequency }

    public enum Wait { case wfi, block }

    /// Whether this vCPU has taken its virtual timer's interrupt since this was last set to false.
    public static var interruptTaken: Bool {
        get { timerFired[VCPU.index] }
        set { timerFired[VCPU.index] = newValue }
    }

    /// Sleeps `ms` milliseconds on this vCPU's virtual timer, waiting with WFI or SCHEDOP_block.
    /// Returns how many times the wait ended before the timer had fired (a well-behaved hypervisor: 0).
    @discardableResult
    public static func sleep(milliseconds ms: UInt64, waitingWith wait: Wait = .wfi) -> Int {
        sleep(until: ticks + ms * (frequency / 1000), waitingWith: wait)
    }

    /// Sleeps until the counter reaches `deadline`; as `sleep(milliseconds:)`.
    @discardableResult
    public static func sleep(until deadline: UInt64, waitingWith wait: Wait = .wfi) -> Int {
        let cpu = VCPU.index
        timerFired[cpu] = false
        write_cntv_cval_el0(deadline)
        write_cntv_ctl_el0(1)
        var early = 0
        while true {
            // Masked while checking, so the interrupt cannot slip in between the check and the wait.
            guest_irq_disable()
            if timerFired[cpu] {
                guest_irq_enable()
                return early
            }
            switch wait {
            case .wfi: guest_wfi()
            case .block: Xen.block()
            }
            guest_irq_enable()
            if !timerFired[cpu] { early += 1 }
        }
    }
}

public enum VCPU {
    public static var index: Int { Int(read_mpidr_el1() & 0xFF) }
}
