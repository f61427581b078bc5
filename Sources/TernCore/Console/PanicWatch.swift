// How Tern tells that a Linux guest panicked. Linux on Arm tells its firmware nothing when it panics:
// the Xen panic notifier that reports SHUTDOWN_crash is x86-only, Debian's kernel has no pvpanic
// driver, and `panic=N` ends in the same restart call as `reboot -f`. What every Linux does is print
// a banner on all its consoles: first "Kernel panic - not syncing: <why>", then the backtrace and the
// stop of the other CPUs, then "---[ end Kernel panic - not syncing: <why> ]---", after which it spins
// for ever (or restarts, if `panic=` asked for that). The hypervisor is the domain's console, so it
// reads the banner there, as test farms (LAVA, syzkaller) do. Only the start of a line counts, after
// the kernel's "[    1.234567]" stamps, so a word in the middle of other output does not.

public struct PanicWatch: Sendable {
    public enum Event: Equatable, Sendable {
        /// The first banner: the panic is under way and its report follows.
        case began
        /// The closing banner: the report is complete and the kernel will do nothing more.
        case ended
    }

    /// The first banner has been seen: whatever the guest asks for from now on is the panic's doing.
    public private(set) var hasBegun = false

    public init() {}

    private static let begins: StaticString = "Kernel panic - not syncing"
    private static let ends: StaticString = "---[ end Kernel panic - not syncing"

    /// Looks at one complete console line (without its newline).
    public mutating func observe(line: [UInt8]) -> Event? {
        let text = Self.textStart(line)
        if Self.line(line, at: text, startsWith: Self.ends) {
            hasBegun = true
            return .ended
        }
        if Self.line(line, at: text, startsWith: Self.begins) {
            hasBegun = true
            return .began
        }
        return nil
    }

    /// Where the line's text starts: after its leading "[...]" groups (time, and the caller when
    /// CONFIG_PRINTK_CALLER is on) and the spaces around them.
    private static func textStart(_ line: [UInt8]) -> Int {
        var i = 0
        while true {
            while i < line.count && line[i] == 0x20 { i += 1 }
            guard i < line.count && line[i] == 0x5B else { return i }
            var close = i + 1
            while close < line.count && line[close] != 0x5D { close += 1 }
            guard close < line.count else { return i }
            i = close + 1
        }
    }

    private static func line(_ line: [UInt8], at start: Int, startsWith prefix: StaticString) -> Bool {
        let p = prefix.utf8Start
        guard line.count - start >= prefix.utf8CodeUnitCount else { return false }
        for k in 0 ..< prefix.utf8CodeUnitCount where line[start + k] != p[k] { return false }
        return true
    }
}
