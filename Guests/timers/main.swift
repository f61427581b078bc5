// The timers guest: the EL1 physical timer (CNTP_*, PPI 30) works like the virtual one, and both
// timers' interrupts are level-sensitive: one that fired while this vCPU had interrupts masked must be
// gone once the timer is disabled, masked or moved into the future, and arrive if it is left alone.
import GuestKit
import GuestKitAsm
import TernCore

nonisolated(unsafe) var physicalTaken = 0
nonisolated(unsafe) var physicalStatusSeen: UInt64 = 0

enum Kind { case virtual, physical }
enum Change { case none, disable, mask, moveAway }

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    interruptHandler = { intid in
        if intid == GuestLayout.physicalTimerPPI {
            physicalStatusSeen = read_cntp_ctl_el0()
            write_cntp_ctl_el0(0)                   // lowers its line, as Linux does with a one-shot timer
            physicalTaken += 1
        }
    }
    Interrupts.start()
    Interrupts.enable(GuestLayout.physicalTimerPPI)

    // The physical timer fires after its TVAL, like the virtual one.
    let start = Timer.ticks
    write_cntp_tval_el0(20 * (Timer.frequency / 1000))
    write_cntp_ctl_el0(1)
    while physicalTaken == 0 && Timer.ticks - start < 2 * Timer.frequency {}
    print("timers: physical timer interrupts \(physicalTaken) after \(ms(Timer.ticks - start)) ms, ctl \(hex(physicalStatusSeen))")

    // Left alone last as well as first: the timer still interrupts after its withdrawn interrupts.
    for kind in [Kind.virtual, .physical] {
        for change in [Change.none, .disable, .mask, .moveAway, .none] {
            let taken = fireWhileMasked(kind, change)
            print("timers: \(kind == .virtual ? "virtual" : "physical") timer \(name(change)): \(taken) interrupts")
        }
    }
    Xen.shutdown(.poweroff)
}

func ms(_ ticks: UInt64) -> UInt64 { ticks / (Timer.frequency / 1000) }

func name(_ c: Change) -> StaticString {
    switch c {
    case .none: "left alone"
    case .disable: "disabled before it was taken"
    case .mask: "masked before it was taken"
    case .moveAway: "moved into the future before it was taken"
    }
}

/// Arms the timer with interrupts masked, lets it fire (Tern sees it fire at EL2 either way), makes the
/// change, leaves the guest once (a hypercall), then unmasks for a while: how many interrupts came?
func fireWhileMasked(_ kind: Kind, _ change: Change) -> Int {
    guest_irq_disable()
    let physicalBefore = physicalTaken
    Timer.interruptTaken = false
    let soon = Timer.ticks + 5 * (Timer.frequency / 1000)
    if kind == .virtual {
        write_cntv_cval_el0(soon)
        write_cntv_ctl_el0(1)
    } else {
        write_cntp_cval_el0(soon)
        write_cntp_ctl_el0(1)
    }
    let until = Timer.ticks + 30 * (Timer.frequency / 1000)
    while Timer.ticks < until {}
    let far = Timer.ticks + 100 * Timer.frequency
    switch (kind, change) {
    case (_, .none): break
    case (.virtual, .disable): write_cntv_ctl_el0(0)
    case (.virtual, .mask): write_cntv_ctl_el0(3)
    case (.virtual, .moveAway): write_cntv_cval_el0(far)
    case (.physical, .disable): write_cntp_ctl_el0(0)
    case (.physical, .mask): write_cntp_ctl_el0(3)
    case (.physical, .moveAway): write_cntp_cval_el0(far)
    }
    _ = Xen.call(.xen_version, XenVersionCommand.version.rawValue)
    guest_irq_enable()
    let settle = Timer.ticks + 10 * (Timer.frequency / 1000)
    while Timer.ticks < settle {}
    guest_irq_disable()
    write_cntv_ctl_el0(0)
    write_cntp_ctl_el0(0)
    guest_irq_enable()
    return kind == .virtual ? (Timer.interruptTaken ? 1 : 0) : physicalTaken - physicalBefore
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
