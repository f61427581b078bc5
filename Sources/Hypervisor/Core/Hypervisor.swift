// The hypervisor's global state: the machine, the physical CPUs, every domain and vCPU, and the
// scheduler that shares the CPUs among them. One lock (`schedulerLock`) guards scheduling state.
import BareMetalSupport
import TernArch
import TernArchAsm
import TernCore

let ternVersion: StaticString = "0.1.0"
let maximumCPUs = TernLimits.maximumCPUs
let maximumDomains = TernLimits.maximumDomains
let maximumVCPUs = TernLimits.maximumVCPUs

/// One physical CPU's own state, touched only by that CPU (and read by others under the lock).
final class PhysicalCPU {
    let index: Int
    let affinity: UInt64
    let stackTop: UInt64
    var current: VCPU?
    var online = false
    var idleSince: UInt64 = 0
    var idleTicks: UInt64 = 0
    var busySince: UInt64 = 0
    /// Its redistributor's SGI/PPI frame, and whether the virtual timer's PPI is enabled there (it is
    /// not while the running vCPU's timer interrupt is in the guest's hands: see VTimer.swift).
    var sgiFrame: UInt64 = 0
    var virtualTimerPPIEnabled = true

    init(index: Int, affinity: UInt64) {
        self.index = index
        self.affinity = affinity
        self.stackTop = tern_stack_top(UInt64(index))
    }
}

nonisolated(unsafe) var platform = Platform()
nonisolated(unsafe) var firmware = Firmware(usesHVC: false)
nonisolated(unsafe) var gic = GICv3(distributor: HostPhysicalAddress(0), redistributors: HostPhysicalAddress(0), redistributorsSize: 0)
nonisolated(unsafe) var cpus: [PhysicalCPU] = []
// The domain and vCPU tables and the scheduler's state are allocated once at boot and never resized.
// They live behind plain pointers: a global Swift array or struct with an initializer is set up lazily,
// behind a check on every access, and the switch path reads these several times.
nonisolated(unsafe) var domains = UnsafeMutableBufferPointer<Domain?>(start: nil, count: 0)
nonisolated(unsafe) var vcpuSlots = UnsafeMutableBufferPointer<VCPU?>(start: nil, count: 0)
nonisolated(unsafe) private var schedulerState: UnsafeMutablePointer<Scheduler>?
@inline(__always) var scheduler: Scheduler {
    _read { yield schedulerState.unsafelyUnwrapped.pointee }
    _modify { yield &schedulerState.unsafelyUnwrapped.pointee }
}
/// The vCPUs blocked until a time (a timer, a poll timeout), by that time: the earliest is the alarm's.
nonisolated(unsafe) private var sleepersState: UnsafeMutablePointer<SlotHeap>?
@inline(__always) var sleepers: SlotHeap {
    _read { yield sleepersState.unsafelyUnwrapped.pointee }
    _modify { yield &sleepersState.unsafelyUnwrapped.pointee }
}

/// Boot: the tables, sized for Tern's limits, and the scheduler for `cpus` physical CPUs.
func allocateTables(cpus: Int) {
    domains = .allocate(capacity: maximumDomains)
    domains.initialize(repeating: nil)
    vcpuSlots = .allocate(capacity: maximumVCPUs)
    vcpuSlots.initialize(repeating: nil)
    schedulerState = .allocate(capacity: 1)
    schedulerState!.initialize(to: Scheduler(pcpus: cpus, domains: maximumDomains, vcpus: maximumVCPUs))
    sleepersState = .allocate(capacity: 1)
    sleepersState!.initialize(to: SlotHeap(capacity: maximumVCPUs))
}
nonisolated(unsafe) var schedulerLock: UInt32 = 0
nonisolated(unsafe) var counterFrequency: UInt64 = 62_500_000
nonisolated(unsafe) var bootTicks: UInt64 = 0
nonisolated(unsafe) var domainsAlive = 0

/// Runs `body` holding the spin lock stored in `lock` (a global or a class's stored property, so the
/// address is the lock's own, shared by every CPU).
@inline(__always) func withSpinLock<R>(_ lock: inout UInt32, _ body: () -> R) -> R {
    withUnsafeMutablePointer(to: &lock) { l in
        bm_lock(l)
        defer { bm_unlock(l) }
        return body()
    }
}

@inline(__always) func lockScheduler() {
    withUnsafeMutablePointer(to: &schedulerLock) { bm_lock($0) }
}

@inline(__always) func unlockScheduler() {
    withUnsafeMutablePointer(to: &schedulerLock) { bm_unlock_inline($0) }
}

/// The physical CPU this code runs on (QEMU virt numbers CPUs by affinity level 0), from the per-CPU
/// table the boot fills: no lazy global, no bounds check.
@inline(__always) func thisCPU() -> PhysicalCPU {
    thisCPUObject.takeUnretainedValue()
}

/// This CPU's object, for borrowing without reference counting (`_withUnsafeGuaranteedRef`).
@inline(__always) var thisCPUObject: Unmanaged<PhysicalCPU> {
    // Filled at boot for every CPU that runs this code: read as set, without an optional's check.
    withCPUObjectSlot(affinity: read_mpidr_el1()) { Unmanaged.fromOpaque(UnsafeRawPointer($0).load(as: UnsafeMutableRawPointer.self)) }
}

/// Boot: `cpu` is the one with its affinity from now on (kept alive by `cpus`).
func registerCPUObject(_ cpu: PhysicalCPU) {
    withCPUObjectSlot(affinity: cpu.affinity) { $0.pointee = Unmanaged.passUnretained(cpu).toOpaque() }
}

/// The entry of tern_cpu_objects for the CPU with MPIDR affinity `affinity` (by its Aff0).
@inline(__always) private func withCPUObjectSlot<R>(affinity: UInt64, _ body: (UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> R) -> R {
    withUnsafeMutablePointer(to: &tern_cpu_objects) { table in
        table.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(TERN_MAXIMUM_CPUS)) {
            body($0 + Int(affinity & UInt64(TERN_MAXIMUM_CPUS - 1)))
        }
    }
}

/// This CPU's index, without its object.
@inline(__always) func thisCPUIndex() -> Int { Int(read_mpidr_el1() & 0xFF) }

/// Hypervisor time in nanoseconds since boot: the scheduler's clock and Xen's "system time".
/// Saturates at .max: a guest's timer compare value can name any tick, however far off.
func nanoseconds(ticks: UInt64) -> UInt64 {
    let t = ticks &- bootTicks
    let (whole, overflow) = (t / counterFrequency).multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return .max }
    let (sum, carry) = whole.addingReportingOverflow(t % counterFrequency * 1_000_000_000 / counterFrequency)
    return carry ? .max : sum
}

func ticks(nanoseconds ns: UInt64) -> UInt64 {
    if ns == .max { return .max }
    return bootTicks &+ ns / 1_000_000_000 * counterFrequency + ns % 1_000_000_000 * counterFrequency / 1_000_000_000
}

@inline(__always) func now() -> UInt64 { nanoseconds(ticks: GenericTimer.now) }
