// SplitMix64: a small seeded generator whose stream one seed fixes, for what must replay exactly: the
// fuzzing guest's operations and the host tests' random cases. Not for anything a guest must not
// predict (BootEntropy is for that).

public struct SplitMix64 {
    public var state: UInt64

    @inlinable public init(state: UInt64) { self.state = state }

    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number below `n` (n > 0), near enough uniform for tests and fuzzing.
    @inlinable public mutating func below(_ n: UInt64) -> UInt64 { next() % n }
}
