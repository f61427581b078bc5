// Two clocks that must not be mixed up: the system counter's ticks (CNTPCT, the timers' compare
// values; 62.5 MHz under QEMU, anything on a board) and hypervisor time in nanoseconds since boot
// (the scheduler's clock, and Xen's "system time" that guests read). Each has its type, and
// SystemCounter is the one place one becomes the other.

/// A value of the system counter, or a timer compare value (which may name any tick, however far off).
public struct CounterTicks: Comparable, Sendable {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
}

/// Hypervisor time: nanoseconds since boot. `.never` (all ones) is a deadline that does not come.
public struct Nanoseconds: Comparable, Sendable, ExpressibleByIntegerLiteral {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public init(integerLiteral raw: UInt64) { self.raw = raw }
    @inlinable public static func < (a: Self, b: Self) -> Bool { a.raw < b.raw }
    public static let never = Nanoseconds(.max)

    @inlinable public static func microseconds(_ count: UInt64) -> Nanoseconds { Nanoseconds(count * 1_000) }
    @inlinable public static func milliseconds(_ count: UInt64) -> Nanoseconds { Nanoseconds(count * 1_000_000) }
    @inlinable public static func seconds(_ count: UInt64) -> Nanoseconds { Nanoseconds(count * 1_000_000_000) }
    /// Wraps as the counter does; a deadline that may be `.never` is clamped by its caller.
    @inlinable public static func + (a: Self, b: Self) -> Self { Nanoseconds(a.raw &+ b.raw) }
}

public struct SystemCounter: Sendable {
    /// Ticks per second (CNTFRQ_EL0).
    public var frequency: UInt64
    /// The counter's value at hypervisor time 0.
    public var start: CounterTicks

    /// `frequency` is not 0 (CNTFRQ_EL0 as firmware set it; not checked here, which is on every trap).
    @inlinable public init(frequency: UInt64, start: CounterTicks) {
        self.frequency = frequency
        self.start = start
    }

    /// Hypervisor time at counter value `ticks`, which is the counter as read since boot (never below
    /// `start`: on the hot paths, so not checked); `.never` when beyond what 64 bits of nanoseconds hold.
    @inlinable public func time(at ticks: CounterTicks) -> Nanoseconds {
        Nanoseconds(saturating: ticks.raw &- start.raw, frequency: frequency)
    }

    /// When a timer whose compare value is `compare` is due: a value a guest wrote, so anything. One
    /// below the start is due already (time 0); one too far off for 64 bits of nanoseconds, `.never`.
    @inlinable public func deadline(at compare: CounterTicks) -> Nanoseconds {
        compare < start ? Nanoseconds(0) : time(at: compare)
    }

    /// How long `count` ticks last.
    @inlinable public func duration(_ count: UInt64) -> Nanoseconds {
        Nanoseconds(saturating: count, frequency: frequency)
    }

    /// The counter value at hypervisor time `time` (`.never` stays all ones: an alarm never due).
    @inlinable public func ticks(at time: Nanoseconds) -> CounterTicks {
        if time == .never { return CounterTicks(.max) }
        let ns = time.raw
        return CounterTicks(start.raw &+ ns / 1_000_000_000 * frequency + ns % 1_000_000_000 * frequency / 1_000_000_000)
    }
}

extension Nanoseconds {
    /// `count` ticks at `frequency`, whole seconds first so nothing overflows before it must.
    @inlinable init(saturating count: UInt64, frequency: UInt64) {
        let (whole, overflow) = (count / frequency).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow {
            self = .never
            return
        }
        let (sum, carry) = whole.addingReportingOverflow(count % frequency * 1_000_000_000 / frequency)
        self = carry ? .never : Nanoseconds(sum)
    }
}
