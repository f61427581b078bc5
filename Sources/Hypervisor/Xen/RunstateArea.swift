// The runstate area: the vcpu_runstate_info a Xen guest registers for each vCPU, in which it reads
// where that vCPU's time went (Linux's steal clock is runnable + offline). Tern rewrites it whenever
// the vCPU leaves or takes a CPU, as Xen on Arm does, so it is current whenever the guest can look.
import TernArchAsm
import TernCore

/// Where a vCPU's vcpu_runstate_info lives, as host addresses found once, at registration, through the
/// guest's own tables (the guest's kernel mapping of it does not move). The area may cross a page.
struct RunstateArea {
    let first: HostPhysicalAddress
    /// The next page's host address, when the area crosses into it.
    let second: HostPhysicalAddress
    /// How many of its six words lie on the first page.
    let wordsOnFirst: Int

    /// nil unless all of it is writable and in the domain's own RAM: the hypervisor writes there on
    /// every switch, never into a device or a page the guest merely has mapped.
    init?(at va: VirtualAddress, ownedBy d: Domain) {
        let size = UInt64(RunstateLayout.size)
        let onFirst = min(size, pageSize - va.raw & 0xFFF)
        guard let first = GuestMemory.translate(va, write: true), d.ownsRAM(first, length: onFirst) else { return nil }
        self.first = first
        if onFirst == size {
            second = first
        } else {
            guard let next = GuestMemory.translate(va + onFirst, write: true), d.ownsRAM(next, length: size - onFirst) else {
                return nil
            }
            second = next
        }
        wordsOnFirst = Int(onFirst / 8)
    }

    private func store(_ word: Int, _ value: UInt64) {
        let pa = word < wordsOnFirst ? first + UInt64(word * 8) : second + UInt64((word - wordsOnFirst) * 8)
        tern_store64(pa.raw, value)
    }

    /// Writes `r` there. With the update flag, a reader on another CPU sees XEN_RUNSTATE_UPDATE in
    /// state_entry_time for as long as the rest is being rewritten, and retries.
    func publish(_ r: Runstate, flagged: Bool) {
        let w = r.words
        if flagged {
            store(1, w.1 | RunstateLayout.updateFlag)
            tern_memory_barrier()
        }
        store(0, w.0)
        store(2, w.2)
        store(3, w.3)
        store(4, w.4)
        store(5, w.5)
        tern_memory_barrier()
        store(1, w.1)
    }
}

extension VCPU {
    /// Moves its runstate on at `t` (a switch: under its run queue's lock) and shows the guest where it
    /// registered an area. Wake-ups only count (`runstate.enter`): Xen too rewrites the area at switches.
    @inline(__always) func enterRunstate(_ state: Runstate.State, at t: Nanoseconds) {
        runstate.enter(state, at: t)
        publishRunstate()
    }

    @inline(__always) func publishRunstate() {
        runstateArea?.publish(runstate, flagged: domain.runstateUpdateFlag)
    }
}

/// vm_assist(cmd, type): of Xen's assists, Arm has only VMASST_TYPE_runstate_update_flag.
func vmAssist(_ command: UInt64, _ type: UInt64, _ d: Domain) -> UInt64 {
    guard type == vmAssistRunstateUpdateFlag else { return XenError.EINVAL.returnValue }
    guard let command = VMAssistCommand(rawValue: command) else { return XenError.ENOSYS.returnValue }
    lockScheduler()
    d.runstateUpdateFlag = command == .enable
    unlockScheduler()
    return 0
}
