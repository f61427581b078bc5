// The hypervisor's global state: the machine, the physical CPUs, every domain and vCPU, and the
// scheduler that shares the CPUs among them. Each CPU's run-queue lock guards its part of the
// scheduling state; all of them together (`lockScheduler`) guard the rest.
import BareMetalSupport
import TernArch
import TernArchAsm
import TernCore

let ternVersion: StaticString = "0.1.0"
let maximumCPUs = TernLimits.maximumCPUs
/// The CPU's VMID width, read at boot: how many domains can live at once.
nonisolated(unsafe) var vmids = VMIDs.cortexA57

/// One physical CPU's own state, touched only by that CPU (and read by others holding every run-queue lock).
final class PhysicalCPU {
    let index: Int
    let affinity: CPUAffinity
    /// ICC_SGI1R_EL1 for the SGI that makes it reschedule.
    let kickSGI: UInt64
    let stackTop: UInt64
    var current: VCPU?
    var online = false
    var idleSince: UInt64 = 0
    var idleTicks: UInt64 = 0
    /// How long, and how many times, it waited for a run-queue lock.
    var lockWaitTicks: UInt64 = 0
    var lockWaits: UInt64 = 0
    /// It holds every run queue's lock (`lockScheduler`), not only its own.
    var holdsEveryQueue = false
    var busySince: UInt64 = 0
    /// Interrupts taken from a guest: each is a point between hypercalls (GracePeriod).
    var interrupts: UInt64 = 0
    /// Its redistributor's SGI/PPI frame, and whether the virtual timer's PPI is enabled there (it is
    /// not while the running vCPU's timer interrupt is in the guest's hands: see VTimer.swift).
    var sgiFrame: UInt64 = 0
    var virtualTimerPPIEnabled = true
    /// A multicall's memory_op that stopped short: the command it goes on with (MemoryOp.pagesPerCall),
    /// and whether the memory_op running now is a multicall's.
    var memoryOpContinuation: UInt64?
    var inMulticall = false
    /// A domain whose own RAM pages this memory_op took out of its stage 2: its TLBs are told once,
    /// when the call is done (deferStage2Flush).
    var deferredStage2Flush: Domain?

    init(index: Int, affinity: CPUAffinity) {
        self.index = index
        self.affinity = affinity
        self.kickSGI = affinity.sgi(GICv3.kickSGI)
        self.stackTop = tern_stack_top(UInt64(index))
    }
}

nonisolated(unsafe) var platform = Platform()
nonisolated(unsafe) var firmware = Firmware(usesHVC: false)
nonisolated(unsafe) var gic = GICv3(distributor: HostPhysicalAddress(0), redistributors: HostPhysicalAddress(0), redistributorsSize: 0)
nonisolated(unsafe) var cpus: [PhysicalCPU] = []
// The domain and vCPU tables and the scheduler's state start small at boot and grow (growTables) to
// what the domains ask. They live behind plain pointers: a global Swift array or struct with an
// initializer is set up lazily, behind a check on every access, and the switch path reads these
// several times.
nonisolated(unsafe) var domains = UnsafeMutableBufferPointer<Domain?>(start: nil, count: 0)
nonisolated(unsafe) var vcpuSlots = UnsafeMutableBufferPointer<VCPU?>(start: nil, count: 0)
nonisolated(unsafe) private var schedulerState: UnsafeMutablePointer<Scheduler>?
@inline(__always) var scheduler: Scheduler {
    _read { yield schedulerState.unsafelyUnwrapped.pointee }
    _modify { yield &schedulerState.unsafelyUnwrapped.pointee }
}
/// Per physical CPU, the vCPUs of its run queue blocked until a time (a timer, a poll timeout), by that
/// time: the earliest is its alarm's. Under its run-queue lock.
nonisolated(unsafe) private var sleepersState: UnsafeMutablePointer<SlotHeap>?
@inline(__always) func sleepers(_ p: Int) -> UnsafeMutablePointer<SlotHeap> { sleepersState.unsafelyUnwrapped + p }

/// Each vCPU slot's register frame, allocated when the slot is first used and kept for good: the frame
/// a CPU last ran (its TPIDR_EL2) is never freed memory, even once that vCPU has been destroyed.
nonisolated(unsafe) private var vcpuFrames = UnsafeMutableBufferPointer<UnsafeMutablePointer<tern_frame>?>(start: nil, count: 0)

/// Boot: small tables, and the scheduler for `cpus` physical CPUs.
func allocateTables(cpus: Int) {
    let initialDomains = 16, initialVCPUs = 64
    domains = .allocate(capacity: initialDomains)
    domains.initialize(repeating: nil)
    vcpuSlots = .allocate(capacity: initialVCPUs)
    vcpuSlots.initialize(repeating: nil)
    vcpuFrames = .allocate(capacity: initialVCPUs)
    vcpuFrames.initialize(repeating: nil)
    schedulerState = .allocate(capacity: 1)
    schedulerState!.initialize(to: Scheduler(pcpus: cpus, domains: initialDomains, vcpus: initialVCPUs))
    sleepersState = .allocate(capacity: cpus)
    for p in 0 ..< cpus { (sleepersState! + p).initialize(to: SlotHeap(capacity: initialVCPUs)) }
    runQueueLocks = .allocate(capacity: cpus)
    runQueueLocks.initialize(repeating: 0, count: cpus)
    runQueueCount = cpus
    domainOnCPU = .allocate(capacity: cpus)
    domainOnCPU.initialize(repeating: -1, count: cpus)
}

/// The largest block the heap hands out: its regions are 4 MiB, each added one with its class map at
/// its start, and a block is aligned to its power-of-two size (libc.c).
let heapLargestBlock = 1 << 21

/// Room in every table for domain slots below `domainSlots` and vCPU slots below `vcpuSlotCount`, at
/// least doubling what is there, so a run of creations copies little. False, with nothing changed,
/// when a table would be larger than the heap's largest block. With the scheduler lock held (every
/// reader of the tables holds it), or at boot before other CPUs run.
func growTables(domains domainSlots: Int, vcpus vcpuSlotCount: Int) -> Bool {
    let domainCount = domainSlots > domains.count ? max(domainSlots, 2 * domains.count) : domains.count
    let vcpuCount = vcpuSlotCount > vcpuSlots.count ? max(vcpuSlotCount, 2 * vcpuSlots.count) : vcpuSlots.count
    // The scheduler's tables are the largest: a pointer, or a frame pointer, a slot is less than theirs.
    guard Scheduler.largestAllocation(domains: domainCount, vcpus: vcpuCount) <= heapLargestBlock else { return false }
    if domainCount > domains.count { domains = grown(domains, to: domainCount) }
    if vcpuCount > vcpuSlots.count {
        vcpuSlots = grown(vcpuSlots, to: vcpuCount)
        // The old frame table is kept: a restart builds its vCPUs outside the lock, and may still be
        // looking at it (the tables only double, so what is kept is less than what is in use).
        vcpuFrames = grown(vcpuFrames, to: vcpuCount, freeingOld: false)
        for p in 0 ..< runQueueCount { sleepers(p).pointee.grow(to: vcpuCount) }
    }
    scheduler.grow(domains: domainCount, vcpus: vcpuCount)
    return true
}

private func grown<T>(_ table: UnsafeMutableBufferPointer<T?>, to count: Int,
                      freeingOld: Bool = true) -> UnsafeMutableBufferPointer<T?> {
    let larger = UnsafeMutableBufferPointer<T?>.allocate(capacity: count)
    if freeingOld {
        _ = larger.moveInitialize(fromContentsOf: table)
        table.deallocate()
    } else {
        _ = larger.initialize(fromContentsOf: table)
    }
    larger[table.count...].initialize(repeating: nil)
    return larger
}

/// The register frame of vCPU slot `slot` (below the tables' size), zeroed.
func vcpuFrame(slot: Int) -> UnsafeMutablePointer<tern_frame> {
    let frame = vcpuFrames[slot] ?? .allocate(capacity: 1)
    vcpuFrames[slot] = frame
    frame.initialize(to: tern_frame())
    return frame
}
/// Each physical CPU's run-queue lock (see SpinLock.swift for what each guards).
nonisolated(unsafe) var runQueueLocks = UnsafeMutablePointer<UInt32>(bitPattern: 8)!
nonisolated(unsafe) var runQueueCount = 0
/// Each physical CPU's running domain (its slot; -1: none), written by that CPU as it switches and read
/// by others without its lock, for Domain.maximumConcurrent only.
nonisolated(unsafe) var domainOnCPU = UnsafeMutablePointer<Int>(bitPattern: 8)!
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

/// Physical CPU `p`'s run-queue lock. Out of line, as bm_lock was: inlined, its attempt costs the
/// trap paths that might lock registers.
@inline(never) func lockRunQueue(_ p: Int) {
    let lock = runQueueLocks + p
    if bm_trylock_inline(lock) == 0 { waitForRunQueue(lock) }
}

@inline(__always) func unlockRunQueue(_ p: Int) { bm_unlock_inline(runQueueLocks + p) }

/// `p`'s run-queue lock if it is free, without waiting.
@inline(__always) func tryLockRunQueue(_ p: Int) -> Bool { bm_trylock_inline(runQueueLocks + p) != 0 }

/// The lock is taken: wait, and count how long, so a run says what the locks cost (the power-off
/// lines, and `make bench`'s scaling rows).
@inline(never) private func waitForRunQueue(_ lock: UnsafeMutablePointer<UInt32>) {
    let start = GenericTimer.now
    bm_lock(lock)
    let cpu = thisCPU()
    cpu.lockWaitTicks &+= GenericTimer.now &- start
    cpu.lockWaits &+= 1
}

/// The whole scheduler: every run queue's lock, in CPU order (the lock order), for what changes more
/// than one CPU's part of it or the tables every CPU reads (domains and vCPUs coming and going, the
/// domain table, pauses, affinity, the toolstack's views). Nothing may hold a run-queue lock already.
@inline(never) func lockScheduler() {
    for p in 0 ..< runQueueCount { lockRunQueue(p) }
    thisCPU().holdsEveryQueue = true
}

@inline(never) func unlockScheduler() {
    thisCPU().holdsEveryQueue = false
    for p in 0 ..< runQueueCount { unlockRunQueue(p) }
}

/// The run-queue lock that guards `v`'s scheduling state (its queue's, which changes only under that
/// lock), taken; returns its index for `unlockRunQueue`. The queue is read under this CPU's own lock
/// first: the scheduler's tables are replaced (grow) only under every lock, so a read with none could
/// see freed memory.
func lockHome(_ v: VCPU) -> Int {
    let here = thisCPUIndex()
    lockRunQueue(here)
    while true {
        let q = scheduler.placement(of: v.slot).pcpu
        if q == here { return q }
        unlockRunQueue(here)
        lockRunQueue(q)
        if scheduler.placement(of: v.slot).pcpu == q { return q }
        unlockRunQueue(q)
        lockRunQueue(here)
    }
}

/// The domain table (`domains`, `vcpuSlots`) read: any one run-queue lock keeps it still, as it changes
/// only under all of them, so this CPU takes its own.
@inline(__always) func withDomainTable<R>(_ body: () -> R) -> R {
    let p = thisCPUIndex()
    lockRunQueue(p)
    defer { unlockRunQueue(p) }
    return body()
}

/// For the scheduler's moves between queues (RunQueueLocking): a CPU that holds every queue's lock has
/// the one it asks for already.
struct RunQueueTryLocks: RunQueueLocking {
    let holdsEvery = thisCPU().holdsEveryQueue
    @inline(__always) func tryLock(_ p: Int) -> Bool { holdsEvery || tryLockRunQueue(p) }
    @inline(__always) func unlock(_ p: Int) { if !holdsEvery { unlockRunQueue(p) } }
}

/// The physical CPU this code runs on, from the words at the top of its stack: no MPIDR decoding, no
/// lazy global, no bounds check.
@inline(__always) func thisCPU() -> PhysicalCPU {
    thisCPUObject.takeUnretainedValue()
}

/// This CPU's object, for borrowing without reference counting (`_withUnsafeGuaranteedRef`).
@inline(__always) var thisCPUObject: Unmanaged<PhysicalCPU> {
    // Set at boot for every CPU that runs this code: read as set, without an optional's check.
    Unmanaged.fromOpaque(UnsafeRawPointer(tern_this_cpu_words()).load(as: UnsafeMutableRawPointer.self))
}

/// Boot: `cpu`'s own words, at the top of its stack (kept alive by `cpus`).
func registerCPUObject(_ cpu: PhysicalCPU) {
    let words = UnsafeMutablePointer<UInt64>(bitPattern: UInt(cpu.stackTop))!
    words[0] = UInt64(UInt(bitPattern: Unmanaged.passUnretained(cpu).toOpaque()))
    words[1] = UInt64(cpu.index)
}

/// Makes physical CPU `index` reschedule: an SGI to it, wherever it sits in the machine. Out of line:
/// inlined, its table lookup costs the trap paths that might kick (MMIO, SGIs) a register pair to save.
/// What the kicked CPU is to find (a queue it reads without its lock) is stored before the SGI goes.
@inline(never) func kickCPU(_ index: Int) {
    tern_dsb_ishst()
    GICv3.kick(sgi: cpus[index].kickSGI)
}

/// This CPU's index, without its object.
@inline(__always) func thisCPUIndex() -> Int { Int(truncatingIfNeeded: tern_this_cpu_words()[1]) }

/// The counter as it was read at boot (frequency and start are set once, before any CPU asks).
@inline(__always) var systemCounter: SystemCounter {
    SystemCounter(frequency: counterFrequency, start: CounterTicks(bootTicks))
}

/// Hypervisor time in nanoseconds since boot: the scheduler's clock and Xen's "system time".
@inline(__always) func now() -> Nanoseconds { SystemClock().now() }

/// The clock seam's hypervisor side: the system counter.
struct SystemClock: Clock {
    @inline(__always) func now() -> Nanoseconds { systemCounter.time(at: CounterTicks(GenericTimer.now)) }
}
