import Foundation

/// The hypervisor's report that a domain stopped: `(tern) d<N> (<name>): shutdown: <reason>`. The
/// console is the only channel out of the machine, so this line is how the host learns how each domain
/// ended.
public struct ShutdownLine: Equatable, Sendable {
    public var domain: Int
    public var name: String
    /// poweroff, reboot, crash, suspend or watchdog (Xen's SHUTDOWN_* names).
    public var reason: String

    public init(domain: Int, name: String, reason: String) {
        self.domain = domain
        self.name = name
        self.reason = reason
    }

    private static let prefix = "(tern) d"
    private static let separator = "): shutdown: "

    /// nil for every other line. The name may itself contain parentheses, so the reason is what follows
    /// the last separator.
    public init?(_ line: String) {
        guard line.hasPrefix(Self.prefix) else { return nil }
        let rest = line.dropFirst(Self.prefix.count)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let domain = Int(digits) else { return nil }
        let afterNumber = rest.dropFirst(digits.count)
        guard afterNumber.hasPrefix(" ("), let split = afterNumber.range(of: Self.separator, options: .backwards) else {
            return nil
        }
        // What follows the reason ("(restarting)", "via PSCI SYSTEM_OFF") is commentary for people.
        let reason = afterNumber[split.upperBound...].split(separator: " ").first.map(String.init) ?? ""
        guard !reason.isEmpty else { return nil }
        self.init(domain: domain, name: String(afterNumber[afterNumber.index(afterNumber.startIndex, offsetBy: 2)..<split.lowerBound]),
                  reason: reason)
    }
}
