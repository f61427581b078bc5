// The firmware below the hypervisor (PSCI), reached through the conduit the host DTB names.
import TernArchAsm

public struct Firmware {
    public var usesHVC: Bool

    public init(usesHVC: Bool) { self.usesHVC = usesHVC }

    private func call(_ fn: UInt32, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0) -> Int64 {
        let r = usesHVC ? tern_hvc(UInt64(fn), a1, a2, a3) : tern_smc(UInt64(fn), a1, a2, a3)
        return Int64(bitPattern: r)
    }

    /// Starts a physical CPU at `entry` (physical, MMU off) with x0 = context.
    public func cpuOn(mpidr: UInt64, entry: UInt64, context: UInt64) -> Int64 {
        call(0xC400_0003, mpidr, entry, context)
    }

    public func systemOff() -> Never {
        _ = call(0x8400_0008)
        while true { tern_wfi() }
    }
}
