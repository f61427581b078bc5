// vcpu_op: TernCore's VCPUOp decides; the calling Domain is its host, and places vcpu_info (in its own
// RAM, under its events lock, which event delivery reads it under) and runstate areas.
import TernArchAsm
import TernCore

func vcpuOp(_ command: UInt64, _ target: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    return VCPUOp.handle(command, target, arg, &memory, v.domain)
}

extension Domain: VCPUOpHost {
    func isOnline(_ vcpu: Int) -> Bool { vcpus[vcpu].online }

    func registerVCPUInfo(_ vcpu: Int, at place: GuestPhysicalAddress) -> UInt64 {
        guard let host = pinRAM(place, length: UInt64(VCPUInfoLayout.size)) else {
            return XenError.EINVAL.returnValue
        }
        let t = vcpus[vcpu]
        let registered: Bool = events.withLock { e in
            if t.vcpuInfo != nil { return false }
            // Carry over what the old place held, then say "look at everything", as Xen does, so nothing
            // that arrived before the move is lost.
            let size = UInt64(VCPUInfoLayout.size)
            if t.index == 0, let shared = e.sharedInfo {
                tern_copy(host.raw, (shared + UInt64(SharedInfoLayout.vcpuInfo0)).raw, size)
            } else {
                tern_zero(host.raw, size)
            }
            tern_store64((host + UInt64(VCPUInfoLayout.pendingSelector)).raw, .max)
            tern_store8((host + UInt64(VCPUInfoLayout.upcallPending)).raw, 1)
            tern_memory_barrier()
            t.publishVCPUInfo(host)
            return true
        }
        guard registered else { return XenError.EINVAL.returnValue }
        raiseEventUpcall(t)
        return 0
    }

    func registerRunstateArea(_ vcpu: Int, at address: VirtualAddress?) -> Bool {
        var area: RunstateArea?
        if let address {
            // Tern writes there at every switch from now on: the pieces behind it stay the domain's.
            guard let found = RunstateArea(at: address, ownedBy: self), pinFrame(found.first),
                  found.second == found.first || pinFrame(found.second) else { return false }
            area = found
        }
        let t = vcpus[vcpu]
        lockScheduler()
        t.runstateArea = area
        t.publishRunstate()
        unlockScheduler()
        return true
    }

    func runstateInfo(_ vcpu: Int) -> VCPURunstateInfo {
        lockScheduler()
        let words = vcpus[vcpu].runstate.words(at: now())
        unlockScheduler()
        return VCPURunstateInfo(words)
    }
}
