// What is typed on the hypervisor's UART goes to one domain at a time, as with Xen's serial console:
// CTRL-a three times moves the focus to the next domain. A domain reads it from its PV console ring
// once it uses one, else from its emulated UART; the control domain reads it with console_io(read).
import BareMetalSupport
import TernArch
import TernArchAsm
import TernCore

/// The physical UART's receive interrupt, once it is enabled.
nonisolated(unsafe) var consoleInterrupt: UInt32 = .max
nonisolated(unsafe) private var focusSlot = 0
nonisolated(unsafe) private var heldCtrlA = 0
nonisolated(unsafe) private var controlInput = ByteRing(capacity: 256)
nonisolated(unsafe) private var controlInputLock: UInt32 = 0

private let ctrlA: UInt8 = 0x01

/// On the boot CPU, once the domains exist: receive interrupts on, focus on the first domain.
func enableConsoleInput() {
    guard let intid = platform.uartInterrupt else { return }
    consoleInterrupt = intid
    gic.enableSPI(intid, affinity: cpus[0].affinity)
    tern_uart_enable_receive_interrupt()
    _ = focusedDomain(announce: true)
}

/// The UART's interrupt: hand every waiting character to the focused domain.
func consoleInputInterrupt() {
    while true {
        let c = tern_uart_getc()
        if c < 0 { return }
        let byte = UInt8(truncatingIfNeeded: c)
        if byte == ctrlA {
            heldCtrlA += 1
            if heldCtrlA == 3 {
                heldCtrlA = 0
                switchFocus()
            }
            continue
        }
        // One or two CTRL-a followed by something else were meant for the domain.
        if heldCtrlA > 0, focusSlot != hypervisorFocus, let d = focusedDomain() {
            _ = withHeldDomain(d.id) { held in
                for _ in 0 ..< heldCtrlA { deliver(ctrlA, to: held) }
            }
        }
        heldCtrlA = 0
        if focusSlot == hypervisorFocus {
            handleKeypress(byte)
            continue
        }
        guard let d = focusedDomain() else { continue }
        // Held while its console ring or UART is written: it may be dying on another CPU.
        _ = withHeldDomain(d.id) { deliver(byte, to: $0) }
    }
}

/// console_io(read) for the control domain: what was typed while it had the focus.
func readControlInput(into buffer: UnsafeMutableBufferPointer<UInt8>) -> Int {
    withSpinLock(&controlInputLock) {
        var n = 0
        while n < buffer.count, let b = controlInput.pop() {
            buffer[n] = b
            n += 1
        }
        return n
    }
}

private func deliver(_ byte: UInt8, to d: Domain) {
    if d.consoleConnected {
        _ = consoleRingReceive(d, byte)
    } else if d.hasUART {
        uartReceive(d, byte)
    } else {
        withSpinLock(&controlInputLock) { controlInput.pushReplacingOldest(byte) }
        // A PV control domain (Linux's hvc0 as dom0) waits for VIRQ_CONSOLE, then reads with console_io.
        if d.xenPV, let port = d.events.withLock({ $0.ports.port(forVIRQ: VIRQ.console.rawValue, vcpu: 0) }) {
            notifyPort(d, port)
        }
    }
}

/// The domain in the focus slot, or the next live one if that domain is gone.
private func focusedDomain(announce: Bool = false) -> Domain? {
    if focusSlot == hypervisorFocus { return nil }
    lockScheduler()
    var found: Domain?
    for step in 0 ..< domains.count {
        let slot = (focusSlot + step) % domains.count
        if let d = domains[slot], !d.dying {
            found = d
            focusSlot = slot
            break
        }
    }
    let moved = found.map { $0.slot } != lastAnnounced
    unlockScheduler()
    if let d = found, announce || moved { announceFocus(d) }
    return found
}

nonisolated(unsafe) private var lastAnnounced: Int?

/// The focus stop after the last domain: keys go to Tern's debug keys.
private let hypervisorFocus = -1

/// Next live domain after the focused one; after the last, Tern itself; after Tern, the first again.
private func switchFocus() {
    lockScheduler()
    var next = hypervisorFocus
    let start = focusSlot == hypervisorFocus ? 0 : focusSlot + 1
    for slot in start ..< domains.count where domains[slot] != nil && !domains[slot]!.dying {
        next = slot
        break
    }
    focusSlot = next
    unlockScheduler()
    if next == hypervisorFocus {
        lastAnnounced = nil
        log("*** console input goes to Tern (type 'h' for debug keys, CTRL-a three times to switch)")
    } else {
        _ = focusedDomain(announce: true)
    }
}

private func announceFocus(_ d: Domain) {
    lastAnnounced = d.slot
    log { c in
        c.s("*** console input goes to ")
        c.domain(d)
        c.s(" (type CTRL-a three times to switch)")
    }
}
