@testable import TernCore

/// A domain's vCPUs for host tests: `vcpuCount` of them, those in `online` on.
struct FakeVCPUs: VirtualCPUs {
    let vcpuCount: Int
    var online: Set<Int>

    init(_ count: Int, online: Set<Int>? = nil) {
        vcpuCount = count
        self.online = online ?? Set(0 ..< count)
    }

    func isOnline(_ vcpu: Int) -> Bool {
        precondition(vcpu >= 0 && vcpu < vcpuCount, "asked about a vCPU the domain does not have")
        return online.contains(vcpu)
    }
}

/// The vCPUs a bit set names, in order.
func indices(_ bits: UInt64) -> [Int] { (0 ..< 64).filter { bits & 1 << UInt64($0) != 0 } }
