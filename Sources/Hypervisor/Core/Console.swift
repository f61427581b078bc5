// Everything the hypervisor and its domains print goes through one UART, a whole line at a time under
// one lock, so lines from two CPUs never interleave. Domain output is prefixed "(dN) " as Xen does.
import BareMetalSupport
import TernArchAsm
import TernCore

nonisolated(unsafe) var consoleLock: UInt32 = 0

/// Writes the pieces of one line; only valid inside `log` or `withConsole`.
struct ConsoleLine {
    func s(_ text: StaticString) {
        let p = text.utf8Start
        for i in 0 ..< text.utf8CodeUnitCount { tern_uart_putc(CChar(bitPattern: p[i])) }
    }

    func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        for c in b { tern_uart_putc(CChar(bitPattern: c)) }
    }

    func bytes(_ b: [UInt8]) {
        b.withUnsafeBufferPointer { bytes($0) }
    }

    func dec(_ value: Int) {
        if value < 0 {
            tern_uart_putc(0x2D)
            dec(UInt64(-value))
        } else {
            dec(UInt64(value))
        }
    }

    func dec(_ value: UInt64) {
        if value >= 10 { dec(value / 10) }
        tern_uart_putc(CChar(0x30 + value % 10))
    }

    func hex(_ value: UInt64) {
        s("0x")
        var started = false
        for i in stride(from: 60, through: 0, by: -4) {
            let d = UInt8(value >> UInt64(i) & 0xF)
            if d != 0 || started || i == 0 {
                started = true
                tern_uart_putc(CChar(bitPattern: d < 10 ? 0x30 + d : 0x57 + d))
            }
        }
    }

    func domain(_ d: Domain) {
        s("d")
        dec(Int(d.id.raw))
        s(" (")
        bytes(d.name)
        s(")")
    }
}

func withConsole(_ body: (ConsoleLine) -> Void) {
    withSpinLock(&consoleLock) { body(ConsoleLine()) }
}

/// One line from the hypervisor itself.
func log(_ body: (ConsoleLine) -> Void) {
    withConsole { c in
        c.s("(tern) ")
        body(c)
        tern_uart_putc(0x0A)
    }
}

func log(_ text: StaticString) {
    log { $0.s(text) }
}

/// Collects a domain's console output and emits it line by line with the domain's prefix, watching the
/// lines for Linux's panic banner on the way.
struct DomainConsole {
    private var pending: [UInt8] = []
    private(set) var panic = PanicWatch()

    /// True when a line written here closed a Linux panic report.
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>, domain: DomainID) -> Bool {
        var ended = false
        for b in bytes {
            if b == 0x0A {
                ended = flush(domain: domain) == .ended || ended
            } else if b != 0x0D {
                pending.append(b)
                if pending.count >= 200 { ended = flush(domain: domain) == .ended || ended }
            }
        }
        return ended
    }

    @discardableResult
    mutating func flush(domain: DomainID) -> PanicWatch.Event? {
        let line = pending
        pending.removeAll(keepingCapacity: true)
        withConsole { c in
            c.s("(d")
            c.dec(Int(domain.raw))
            c.s(") ")
            c.bytes(line)
            tern_uart_putc(0x0A)
        }
        return panic.observe(line: line)
    }

    var isEmpty: Bool { pending.isEmpty }
}
