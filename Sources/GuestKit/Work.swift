// The CPU-bound work the fairness guests count: units of 256 rounds of xorshift, done until the counter
// reaches a given tick. Every guest that is compared with another does the same unit, so their counts
// compare.

public struct Work {
    /// The xorshift state: its low byte is printed as a check that the work was not optimised away.
    public private(set) var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    /// Units done so far.
    public private(set) var units: UInt64 = 0
    /// The longest time, in counter ticks, the counter moved between two units: how long this vCPU
    /// was kept from its CPU at a stretch.
    public private(set) var longestGap: UInt64 = 0

    public init() {}

    /// Works until the counter reaches `end`; returns the units this call did.
    @discardableResult
    public mutating func run(until end: UInt64) -> UInt64 {
        let before = units
        var last = Timer.ticks
        while last < end {
            for _ in 0 ..< 256 {
                state ^= state << 13
                state ^= state >> 7
                state ^= state << 17
            }
            units += 1
            let t = Timer.ticks
            longestGap = max(longestGap, t - last)
            last = t
        }
        return units - before
    }
}
