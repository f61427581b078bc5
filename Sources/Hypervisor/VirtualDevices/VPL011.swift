// The domain's emulated SBSA UART: its MMIO traps land here. Output joins the domain's console line
// (so it is printed with the domain's prefix, like console_io); the interrupt line is SPI 32.
import TernCore

/// A trapped access `offset` bytes into the UART's page. Returns false for an access it does not
/// decode (a width the UART lacks): the guest then takes an external abort, as for nothing there.
func emulateUART(_ v: VCPU, offset: Int, access: DataAbort) -> Bool {
    let d = v.domain
    var ok = true
    var output: UInt8?
    let (before, after) = d.uart.withLock { uart in
        let before = uart.interruptAsserted
        if access.isWrite {
            (ok, output) = uart.write(offset: offset, size: access.size, value: v.register(access.register))
        } else if let value = uart.read(offset: offset, size: access.size) {
            v.setRegister(access.register, access.loadedValue(value))
        } else {
            ok = false
        }
        return (before, uart.interruptAsserted)
    }
    if let byte = output {
        withUnsafePointer(to: byte) { d.consoleWrite(UnsafeBufferPointer(start: $0, count: 1)) }
    }
    updateUARTLine(d, before: before, after: after)
    return ok
}

/// Console input for a domain that has the focus.
func uartReceive(_ d: Domain, _ byte: UInt8) {
    let (before, after) = d.uart.withLock { uart in
        let before = uart.interruptAsserted
        uart.receive(byte)
        return (before, uart.interruptAsserted)
    }
    updateUARTLine(d, before: before, after: after)
}

/// SPI 32 follows the UART's interrupt output: a rising edge makes it pending, a falling one withdraws
/// it if no vCPU has taken it yet.
private func updateUARTLine(_ d: Domain, before: Bool, after: Bool) {
    if after && !before {
        raiseSharedInterrupt(d, Int(GuestLayout.uartSPI))
    } else if before && !after {
        d.withVGIC { d.distributor.lower(Int(GuestLayout.uartSPI)) }
    }
}
