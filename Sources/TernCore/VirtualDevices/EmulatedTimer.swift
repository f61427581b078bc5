// An architected timer that exists only as state: the EL1 physical timer (CNTP_CTL/CVAL/TVAL_EL0) of a
// vCPU, whose every access traps. It counts on the one system counter; its interrupt line is high while
// it is enabled, unmasked and its compare value has passed, like the hardware's level-sensitive PPI.

public struct EmulatedTimer: Equatable, Sendable {
    /// CNTx_CTL bits.
    public static let enable: UInt64 = 1 << 0
    public static let interruptMask: UInt64 = 1 << 1
    public static let status: UInt64 = 1 << 2

    /// ENABLE and IMASK as the guest wrote them (ISTATUS is computed).
    public private(set) var control: UInt64 = 0
    /// CVAL, in counter ticks.
    public private(set) var compare: UInt64 = 0

    public init() {}

    public enum Register: Sendable { case control, compare, timerValue }

    /// The register's value at counter value `now`, as an MRS reads it.
    public func read(_ register: Register, now: UInt64) -> UInt64 {
        switch register {
        case .control:
            return control | (control & Self.enable != 0 && now >= compare ? Self.status : 0)
        case .compare:
            return compare
        case .timerValue:
            // TVAL is CVAL - now as a signed 32-bit count; the upper half of the register reads 0.
            return (compare &- now) & 0xFFFF_FFFF
        }
    }

    /// An MSR of `value` at counter value `now`.
    public mutating func write(_ register: Register, _ value: UInt64, now: UInt64) {
        switch register {
        case .control:
            control = value & (Self.enable | Self.interruptMask)
        case .compare:
            compare = value
        case .timerValue:
            compare = now &+ UInt64(bitPattern: Int64(Int32(truncatingIfNeeded: value)))
        }
    }

    /// Whether its interrupt line is high at `now`.
    public func isAsserted(now: UInt64) -> Bool {
        control & (Self.enable | Self.interruptMask) == Self.enable && now >= compare
    }

    /// When (in ticks) its line will go high, if it is armed and not yet there.
    public func deadline(now: UInt64) -> UInt64? {
        control & (Self.enable | Self.interruptMask) == Self.enable && now < compare ? compare : nil
    }
}
