// The toolstack's pause of a domain (`xl pause`, domctl pausedomain/unpausedomain), counted as Xen
// counts controller_pause_count: pauses nest, at most 255 of them (-EOVERFLOW past that, so a
// toolstack in a loop cannot overflow it), and an unpause with none outstanding is -EINVAL.

public struct ControllerPause: Equatable, Sendable {
    public private(set) var count = 0
    public static let most = 255

    public init() {}

    public var isPaused: Bool { count > 0 }

    /// True when this pause stopped the domain (it was running).
    public mutating func pause() -> Result<Bool, XenError> {
        guard count < Self.most else { return .failure(.EOVERFLOW) }
        count += 1
        return .success(count == 1)
    }

    /// True when this unpause let the domain run again.
    public mutating func unpause() -> Result<Bool, XenError> {
        guard count > 0 else { return .failure(.EINVAL) }
        count -= 1
        return .success(count == 0)
    }
}
