// A virtual CPU: its register frame (filled by the exception vectors), the EL1, FP and virtual-GIC
// state that follows it between physical CPUs, and why it is not running when it is not.
import TernArchAsm
import TernCore

/// SCTLR_EL1 at reset: MMU and caches off, RES1 bits set.
let sctlrEL1Reset: UInt64 = 0x30D0_0800
/// SPSR for entering EL1h with all exceptions masked.
let spsrEL1hMasked: UInt64 = 0x3C5

/// Why a vCPU is not runnable; `paused`: its domain is paused by the toolstack, and it runs at the unpause.
enum BlockReason {
    case none, wfi, schedBlock, poll, offline, paused

    /// Where a vCPU off its CPU for this reason spends its time: a paused one is offline, as Xen counts
    /// it (not runnable, and not waiting for an event). A switch, so the compiler makes it a table.
    var runstate: Runstate.State {
        switch self {
        case .none: .runnable
        case .wfi, .schedBlock, .poll: .blocked
        case .offline, .paused: .offline
        }
    }
}

final class VCPU {
    // Strong: the cycle with Domain.vcpus is broken when the domain is released.
    let domain: Domain
    let index: Int
    /// The scheduler's slot for this vCPU (global across domains).
    let slot: Int
    let frame: UnsafeMutablePointer<tern_frame>
    let el1: UnsafeMutablePointer<tern_el1_state>
    let fp: UnsafeMutablePointer<tern_fp_state>
    let vgic: UnsafeMutablePointer<tern_vgic_state>
    var redistributor: VirtualRedistributor
    var online = false
    var blocked: BlockReason = .offline
    /// When a blocked vCPU must be woken (ns of hypervisor time): its virtual timer or a poll timeout.
    var wakeAt = Nanoseconds.never
    var pollDeadline = Nanoseconds.never
    /// While it polls (SCHEDOP_poll): the one port it waits for, or -1 for any port (several ports, or
    /// port 0, which is never bound: Xen wakes such a poller on any event); else `notPolling`.
    var pollPort: Int32 = notPolling
    var runningOn: Int = -1
    /// Its vcpu_info, once registered (VCPUOP_register_vcpu_info). Senders on other CPUs read it without
    /// a lock, so it is kept as one aligned word (0: none), a single-copy-atomic load and store; an
    /// Optional's separate tag byte could be seen set before its address.
    private var vcpuInfoWord: UInt64 = 0
    var vcpuInfo: HostPhysicalAddress? {
        @inline(__always) get { vcpuInfoWord == 0 ? nil : HostPhysicalAddress(vcpuInfoWord) }
    }

    /// Publishes its vcpu_info, once the page is filled (the caller's barrier orders the two).
    func publishVCPUInfo(_ address: HostPhysicalAddress) { vcpuInfoWord = address.raw }
    /// The physical CPUs it ran on, and the most vCPUs of its domain it saw on CPUs as it went on one
    /// (counted from `domainOnCPU`, without the other CPUs' locks: a few too many at a moment of change).
    var pcpusUsed: UInt64 = 0
    var mostAtOnce = 0
    /// Where its time went (changed under its run queue's lock), and where the guest asked to see it.
    var runstate = Runstate(.offline, at: now())
    var runstateArea: RunstateArea?
    /// Its virtual timer's interrupt is in the virtual GIC (pending or being handled), so the physical
    /// PPI stays disabled on its CPU until the guest is done with it or it is withdrawn.
    var timerInFlight = false
    /// Its emulated EL1 physical timer, and whether that timer's line was high when last looked at.
    var physicalTimer = EmulatedTimer()
    var physicalTimerLine = false

    init(domain: Domain, index: Int, slot: Int, count: Int) {
        self.domain = domain
        self.index = index
        self.slot = slot
        frame = vcpuFrame(slot: slot)
        el1 = .allocate(capacity: 1)
        el1.initialize(to: tern_el1_state())
        fp = .allocate(capacity: 1)
        fp.initialize(to: tern_fp_state())
        vgic = .allocate(capacity: 1)
        vgic.initialize(to: tern_vgic_state())
        redistributor = VirtualRedistributor(vcpu: index, isLast: index == count - 1)
        el1.pointee.vmpidr = 0x8000_0000 | CPUAffinity(vcpu: index).raw
        frame.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        el1.deallocate()
        fp.deallocate()
        vgic.deallocate()
    }

    /// Puts the vCPU at `entry` in EL1h with the MMU off, as Linux's boot protocol and PSCI CPU_ON want.
    func reset(entry: GuestPhysicalAddress, x0: UInt64) {
        let owner = frame.pointee.owner
        frame.pointee = tern_frame()
        frame.pointee.owner = owner
        frame.pointee.x.0 = x0
        frame.pointee.elr = entry.raw
        frame.pointee.spsr = spsrEL1hMasked
        let vmpidr = el1.pointee.vmpidr
        el1.pointee = tern_el1_state()
        el1.pointee.sctlr = sctlrEL1Reset
        el1.pointee.vmpidr = vmpidr
        fp.pointee = tern_fp_state()
        vgic.pointee = tern_vgic_state()
        timerInFlight = false
        physicalTimer = EmulatedTimer()
        physicalTimerLine = false
    }

    /// x0-x30 by number (31 is XZR: reads 0, writes vanish), as whole aligned words.
    @inline(__always) func register(_ n: Int) -> UInt64 {
        n == 31 ? 0 : UnsafeMutableRawPointer(frame).assumingMemoryBound(to: UInt64.self)[n]
    }

    @inline(__always) func setRegister(_ n: Int, _ value: UInt64) {
        if n != 31 { UnsafeMutableRawPointer(frame).assumingMemoryBound(to: UInt64.self)[n] = value }
    }
}
