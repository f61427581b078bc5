@testable import TernCore

/// The clock seam for host tests: it reads what the test set.
struct FakeClock: Clock {
    var time: Nanoseconds
    init(_ time: Nanoseconds) { self.time = time }
    func now() -> Nanoseconds { time }
}
