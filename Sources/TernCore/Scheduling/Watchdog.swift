// A domain's watchdog timers (SCHEDOP_watchdog): a guest arms one with a timeout in seconds and must
// poke it before it runs out, or the domain is shut down with reason watchdog and xl's on_watchdog
// decides what follows. As on Xen, a domain has two, numbered 1 and 2.

public struct Watchdogs: Sendable {
    public static let count = 2
    /// When each fires; nil when not in use.
    public private(set) var deadlines: [Nanoseconds?] = [nil, nil]

    public init() {}

    public enum Failure: Error, Equatable, Sendable {
        /// Both are in use (-ENOSPC).
        case noneFree
        /// No such watchdog, or not in use (-EINVAL).
        case invalid
    }

    /// sched_watchdog { id, timeout } at time `now`: id 0 arms a free one and returns its id; a
    /// nonzero id pokes that one with a new timeout, or stops it when the timeout is 0. Returns the id
    /// for the first, 0 for the others.
    public mutating func command(id: UInt32, timeout seconds: UInt32, now: Nanoseconds) -> Result<UInt32, Failure> {
        let deadline = now + .seconds(UInt64(seconds))
        if id == 0 {
            guard let free = deadlines.firstIndex(where: { $0 == nil }) else { return .failure(.noneFree) }
            deadlines[free] = deadline
            return .success(UInt32(free + 1))
        }
        let i = Int(id) - 1
        guard i < Self.count, deadlines[i] != nil else { return .failure(.invalid) }
        deadlines[i] = seconds == 0 ? nil : deadline
        return .success(0)
    }

    /// The earliest deadline of those in use.
    public var next: Nanoseconds? { deadlines.compactMap { $0 }.min() }

    /// True when one has run out by `now`.
    public func hasFired(at now: Nanoseconds) -> Bool { next.map { $0 <= now } ?? false }
}
