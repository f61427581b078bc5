// What one vCPU of the fuzzer did, counted where the hypervisor is never pointed: a block of words per
// vCPU, written by that vCPU only and added up by vCPU 0 at the end.
import GuestKit
import GuestKitAsm

enum Counter: Int {
    case ops, hypercalls, mmio, systemRegisters, psci, waits, yields, aborts, anomalies
    case peer, peerMapped, peerCopied, peerBound
}

enum Region: Int {
    case gicd, gicr, uart, grantWindow, hole, pastRAM

    var name: StaticString {
        switch self {
        case .gicd: "gicd"
        case .gicr: "gicr"
        case .uart: "uart"
        case .grantWindow: "grant-window"
        case .hole: "hole"
        case .pastRAM: "past-ram"
        }
    }
}

struct Stats {
    /// Hypercall numbers counted one by one; the rest share the last bucket.
    static let numbers = 64
    static let callsAt = 0
    static let reachedAt = callsAt + numbers + 1
    static let regionsAt = reachedAt + numbers + 1
    static let countersAt = regionsAt + 6
    static let words = countersAt + 13

    let base: UnsafeMutablePointer<UInt64>

    static func allocate(vcpus: Int) -> UnsafeMutablePointer<UInt64> {
        let block = UnsafeMutablePointer<UInt64>.allocate(capacity: words * vcpus)
        block.initialize(repeating: 0, count: words * vcpus)
        return block
    }

    subscript(_ c: Counter) -> UInt64 {
        get { base[Self.countersAt + c.rawValue] }
        nonmutating set { base[Self.countersAt + c.rawValue] = newValue }
    }

    func count(_ c: Counter) { self[c] &+= 1 }
    func count(_ r: Region) { base[Self.regionsAt + r.rawValue] &+= 1 }
    func calls(_ number: UInt64) -> UInt64 { base[Self.callsAt + Int(number)] }
    func reached(_ number: UInt64) -> UInt64 { base[Self.reachedAt + Int(number)] }
    func region(_ r: Region) -> UInt64 { base[Self.regionsAt + r.rawValue] }

    /// A call of hypercall `number` with sub-op `command` that the hypervisor answered with `result`:
    /// a sub-op counts as reached when it was not refused as unknown (-ENOSYS).
    func hypercall(_ number: UInt64, _ command: UInt64, _ result: Int64) {
        let bucket = Int(min(number, UInt64(Self.numbers)))
        base[Self.callsAt + bucket] &+= 1
        if result != -38 && command < 64 { base[Self.reachedAt + bucket] |= 1 << command }
        count(.hypercalls)
    }

    /// Adds another vCPU's counts to these.
    func add(_ other: Stats) {
        for i in 0 ..< Self.words {
            base[i] = i >= Self.reachedAt && i < Self.regionsAt ? base[i] | other.base[i] : base[i] &+ other.base[i]
        }
    }

    /// An invariant broke: said at once, counted, and the run fails on it.
    func anomaly(_ what: String) {
        count(.anomalies)
        print("fuzz: ANOMALY on vcpu \(VCPU.index): \(what)")
    }
}
