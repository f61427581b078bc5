// The privileged mode (`privileged=1 victims=N`): the fuzzer is the control domain, so domctl, sysctl
// and the toolstack's memory_op, hvm_op, grant and event-channel calls on other domains are answered
// instead of refused, and what it checks is that no argument stops Tern. A quarter of its hypercalls
// are domctls, half of them commands Tern implements, each on a domain chosen here: mostly one of the
// sacrificial domains 1...N (fuzzing domUs themselves), else the IDs past them (domains its own
// createdomain calls made, or none), DOMID_SELF and the reserved IDs, or any other. Half its
// createdomains are well formed (random fill never passes Xen's checks), so domains are made. Never
// itself: pausing or destroying itself is refused (-EINVAL, as on Xen), but a control domain that caps
// its own CPU time, pins its vCPUs or lowers its own memory limit is obeyed, and the run would end for
// what it asked, not for anything Tern did wrong. So its domctls are never left with
// what a fill put in a structure it cannot set (misaligned, outside scratch), and never go through a
// multicall. (The other calls with a domain in their structure are drawn as before and may name it:
// those act on itself as on any domU.)
import GuestKit
import GuestKitAsm
import TernCore

extension Fuzzer {
    /// Xen 4.17's XEN_DOMCTL_* numbers Tern answers (Domctl.swift), destroydomain and createdomain among them.
    static let implementedDomctls: [UInt64] = [1, 2, 3, 4, 5, 9, 11, 12, 14, 15, 16, 17, 25, 35, 36, 68, 71, 85, 86]

    /// Half the time one Tern implements, else `drawn`. destroydomain only one time in a thousand it
    /// is drawn: a sacrificial domain destroyed is gone for the rest of the run (it is not restarted),
    /// and the other calls need it alive to reach anything; and pausedomain only one time in four
    /// (else unpausedomain): pauses add up, as on Xen, and even odds would keep it paused most of the run.
    mutating func privilegedDomctl(_ drawn: UInt64) -> UInt64 {
        let command = random.below(2) == 0 ? Self.implementedDomctls[Int(random.below(UInt64(Self.implementedDomctls.count)))] : drawn
        switch command & 0xFFFF_FFFF {
        case 2: return random.below(1000) == 0 ? command : 4
        case 3: return random.below(4) == 0 ? command : 4
        default: return command
        }
    }

    mutating func targetDomain() -> UInt16 {
        switch random.below(10) {
        case 0 ..< 6: return UInt16(1 + random.below(UInt64(max(victims, 1))))
        case 6, 7: return UInt16(victims + 1) + UInt16(random.below(8))
        case 8: return UInt16(0x7FF0 + random.below(16))
        default: return UInt16(1 + random.below(0xFFFE))
        }
    }

    /// A struct xen_domctl_createdomain Xen 4.17 would take (DomctlCreation.swift has its layout) at
    /// the domctl's payload, with the choices left to chance: its vCPUs, grant frames, GIC, SPIs,
    /// handle and ssidref; and one time in eight a cpupool that is not there (-ENOENT).
    mutating func wellFormedCreation(at domctl: UInt64) {
        let c = domctl + 16
        guest_store32(c, UInt32(truncatingIfNeeded: random.next()))                    // ssidref
        for i: UInt64 in 0 ..< 4 { guest_store32(c + 4 + i * 4, UInt32(truncatingIfNeeded: random.next())) }
        guest_store32(c + 20, 3)                                                         // hvm | hap
        guest_store32(c + 24, 0)                                                         // no IOMMU
        guest_store32(c + 28, UInt32(1 + random.below(8)))                              // vCPUs
        guest_store32(c + 32, UInt32(random.below(4096)))                               // event ports
        guest_store32(c + 36, random.below(2) == 0 ? 0xFFFF_FFFF : UInt32(1 + random.below(UInt64(GrantTableOp.maximumFrames))))
        guest_store32(c + 40, UInt32(random.below(1024)))                               // maptrack frames
        guest_store32(c + 44, 1)                                                         // grant table v1
        guest_store32(c + 48, 0)                                                         // no vmtrace
        guest_store32(c + 52, random.below(8) == 0 ? 1 : 0)                             // cpupool
        guest_store32(c + 56, random.below(2) == 0 ? 0 : 2)                              // GIC: native or v3
        guest_store32(c + 60, UInt32(random.below(3) * 32))                             // SPIs: 0, 32 or 64
        guest_store32(c + 64, 0)
    }
}
