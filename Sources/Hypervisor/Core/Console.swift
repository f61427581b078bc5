// Everything the hypervisor and its domains print goes through one UART, a whole line at a time under
// one lock, so lines from two CPUs never interleave. Domain output is prefixed "(dN) " as Xen does.
import BareMetalSupport
import TernArch
import TernArchAsm
import TernCore

nonisolated(unsafe) var consoleLock: UInt32 = 0
/// Everything printed, the newest 16 KiB of it (Xen's conring), for `xl dmesg`; under consoleLock.
nonisolated(unsafe) private var consoleHistory: UnsafeMutablePointer<ConsoleHistory>?

/// Boot, before the first line: from here on the console is kept as well as printed.
func startConsoleHistory() {
    let history = UnsafeMutablePointer<ConsoleHistory>.allocate(capacity: 1)
    history.initialize(to: ConsoleHistory(capacity: 16 * 1024))
    consoleHistory = history
}

/// sysctl readconsole: the history read under the console lock.
func readConsoleHistory(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                        _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? {
    withSpinLock(&consoleLock) {
        consoleHistory?.pointee.read(max: max, from: index, incremental: incremental, clear: clear, copy) ?? (0, index)
    }
}

/// Whether the line being written goes into the history (under consoleLock).
nonisolated(unsafe) private var keepingLine = true

/// One byte to the UART and, unless the line is the control domain's, the history. Out of line: the
/// trap paths that may print would otherwise carry the history's code, and save registers for it.
@inline(never) private func put(_ c: CChar) {
    tern_uart_putc(c)
    if keepingLine { consoleHistory?.pointee.append(UInt8(bitPattern: c)) }
}

/// Writes the pieces of one line; only valid inside `log` or `withConsole`.
struct ConsoleLine {
    func s(_ text: StaticString) {
        let p = text.utf8Start
        for i in 0 ..< text.utf8CodeUnitCount { put(CChar(bitPattern: p[i])) }
    }

    func bytes(_ b: UnsafeBufferPointer<UInt8>) {
        for c in b { put(CChar(bitPattern: c)) }
    }

    func bytes(_ b: [UInt8]) {
        b.withUnsafeBufferPointer { bytes($0) }
    }

    func dec(_ value: Int) {
        if value < 0 {
            put(0x2D)
            dec(UInt64(-value))
        } else {
            dec(UInt64(value))
        }
    }

    func dec(_ value: UInt64) {
        if value >= 10 { dec(value / 10) }
        put(CChar(0x30 + value % 10))
    }

    func hex(_ value: UInt64) {
        s("0x")
        var started = false
        for i in stride(from: 60, through: 0, by: -4) {
            let d = UInt8(value >> UInt64(i) & 0xF)
            if d != 0 || started || i == 0 {
                started = true
                put(CChar(bitPattern: d < 10 ? 0x30 + d : 0x57 + d))
            }
        }
    }

    /// "d3 (web)"; a domain the toolstack created has its name in xenstore, not here: "d3".
    func domain(_ d: Domain) {
        s("d")
        dec(Int(d.id.raw))
        guard !d.name.isEmpty else { return }
        s(" (")
        bytes(d.name)
        s(")")
    }
}

/// `kept`: the line also goes into the history. The control domain's own lines do not, as on Xen
/// (where they go straight to the serial line): its `xl dmesg` would otherwise read back what it
/// printed of the history, for ever.
/// Out of line, so the trap paths that may print carry a call, not the lock and the history's switch.
@inline(never) func withConsole(kept: Bool = true, _ body: (ConsoleLine) -> Void) {
    withSpinLock(&consoleLock) {
        keepingLine = kept
        body(ConsoleLine())
        keepingLine = true
    }
}

/// For the fault report: the console lock if it comes within 100 ms, and the lines without it if not
/// (this CPU may have faulted holding it, inside a line or a console read), so a fault never hangs
/// unreported.
func withConsoleAfterFault(_ body: (ConsoleLine) -> Void) {
    let start = GenericTimer.now
    let locked = withUnsafeMutablePointer(to: &consoleLock) { lock in
        while GenericTimer.now &- start < counterFrequency / 10 {
            if bm_trylock_inline(lock) != 0 { return true }
        }
        return false
    }
    keepingLine = true
    body(ConsoleLine())
    if locked { withUnsafeMutablePointer(to: &consoleLock) { bm_unlock($0) } }
}

/// One line from the hypervisor itself. Out of line: the trap paths that report something carry a
/// call and a closure, not the line's code (measured: 1-4 instructions off every trap).
@inline(never) func log(_ body: (ConsoleLine) -> Void) {
    withConsole { c in
        c.s("(tern) ")
        body(c)
        put(0x0A)
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
    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>, domain: DomainID, kept: Bool) -> Bool {
        var ended = false
        for b in bytes {
            if b == 0x0A {
                ended = flush(domain: domain, kept: kept) == .ended || ended
            } else if b != 0x0D {
                pending.append(b)
                if pending.count >= 200 { ended = flush(domain: domain, kept: kept) == .ended || ended }
            }
        }
        return ended
    }

    @discardableResult
    mutating func flush(domain: DomainID, kept: Bool) -> PanicWatch.Event? {
        let line = pending
        pending.removeAll(keepingCapacity: true)
        withConsole(kept: kept) { c in
            c.s("(d")
            c.dec(Int(domain.raw))
            c.s(") ")
            c.bytes(line)
            put(0x0A)
        }
        return panic.observe(line: line)
    }

    var isEmpty: Bool { pending.isEmpty }
}
