// A domain: an isolated guest machine with its own stage-2 address space, memory, vCPUs and virtual
// GIC distributor. Its plain fields are changed under the scheduler lock unless noted; the rest are
// inside the locks that guard them (SpinLock.swift has the order they are taken in).
import BareMetalSupport
import Synchronization
import TernArchAsm
import TernCore

/// The size of the pieces a toolstack-built domain's RAM comes in.
let ramPieceSize: UInt64 = 0x20_0000

final class Domain {
    let id: DomainID
    let slot: Int
    let name: [UInt8]
    let privileged: Bool
    let vmid: UInt64
    /// Its RAM when it is one block (the domains Tern builds); empty for one the toolstack built,
    /// whose RAM comes in pieces as it is populated (`ramPieces`).
    var memory: PhysicalRange
    /// Where its RAM starts in its own address space: GuestLayout.ram, or the host address when direct-mapped.
    let ramBase: GuestPhysicalAddress
    /// Its stage 2 (built at boot, changed at run time by grant maps and memory_op) and the frames the
    /// hypervisor lent it. Its root never moves, so the switch path reads that without the lock.
    var physMap: SpinLocked<PhysMap>
    let stage2Root: HostPhysicalAddress
    var vcpus: [VCPU] = []
    /// The distributor of its virtual GIC. It and its vCPUs' redistributors are guarded by vgicLock,
    /// which is not a SpinLocked because the redistributors live in the vCPUs the trap path holds.
    var distributor = VirtualDistributor()
    var vgicLock: UInt32 = 0
    /// Its emulated devices by guest-physical range, where a data abort is looked up.
    let mmio: MMIORegions
    var console = SpinLocked(DomainConsole())
    /// The emulated SBSA UART, when the domain has one (Xen's dom0less `vpl011`).
    let hasUART: Bool
    var uart = SpinLocked(VirtualUART())
    /// Xen PV: the guest is told it runs on Xen (the `hypervisor` node) and gets shared_info, event
    /// channels, a grant table and a console ring.
    let xenPV: Bool
    var events = SpinLocked(DomainEvents())
    /// Set (once, for good) with `events.fifo`; a plain flag the 2-level path may read without the lock.
    var usesFIFO = false
    var grants = SpinLocked(DomainGrants())
    /// Who works on its memory right now (other domains' grant copies and maps, events to it, console
    /// input): it is not released while any does. Changed only through `withReferences`, with atomics.
    var referenceCount: UInt32 = 0
    /// How many of its vCPUs poll ports right now (SCHEDOP_poll): senders look for them only when some do.
    /// Its vCPUs change it on their own CPUs, each under its own run queue's lock: an atomic.
    let pollers = Atomic<Int>(0)
    /// The console ring page Tern provides (at MagicPages.console) and its event channel; set at build.
    var consoleRing: HostPhysicalAddress?
    var consolePort = EventPort.none
    /// The guest has used its PV console, so typed input goes there rather than to the emulated UART.
    var consoleConnected = false
    /// VMASST_TYPE_runstate_update_flag: the guest reads other vCPUs' runstate areas, so rewrites are
    /// marked in progress (written under the scheduler lock, read by the switch path).
    var runstateUpdateFlag = false
    /// Hypercalls it made that Tern does not implement, each reported once.
    var reports = SpinLocked(UnimplementedReports())
    /// Told once that it reached for guest-physical memory with nothing behind it.
    var reportedAbort = false
    var weight: UInt32
    var cap: UInt32
    var affinity: UInt64
    /// What it was built from, so `restart` can build it again.
    let spec: DomainSpec
    let firstVCPUSlot: Int
    /// Alive, or how it was shut down and how far giving back what it held has come (under the
    /// scheduler lock).
    var life = DomainLife()
    var dying: Bool { life.isDying }
    var restarts = 0
    /// Its watchdog timers (SCHEDOP_watchdog), under the scheduler lock.
    var watchdogs = Watchdogs()
    /// The toolstack's pauses (xl pause), under the scheduler lock.
    var controllerPause = ControllerPause()
    /// Hypervisor time when it started: its guest's clocks begin about then (see PlatformOp.swift).
    var startedAt: Nanoseconds = 0
    // What the toolstack's interfaces keep, after the fields the hot paths use (so their offsets stay
    // small enough for single load and store instructions).
    /// A toolstack-built domain's RAM: the host address of each 2 MiB piece of its RAM window, 0 where
    /// none is. Pieces are added and taken away (a balloon's, RAMPieces.swift) under its physMap lock.
    /// Readers that only use a frame during their own hypercall look without the lock (a piece taken
    /// away waits until no CPU can still be in one); readers that keep it pin or count it (useRAM).
    var ramPieces = UnsafeMutableBufferPointer<UInt64>(start: nil, count: 0)
    /// Its UUID (xen_domain_handle_t) and security label, as the toolstack gave them; zero for Tern's.
    var handle = [UInt8](repeating: 0, count: 16)
    var ssidref: UInt32 = 0
    /// How many grant-table frames it may have (createdomain's max_grant_frames).
    var grantFrameLimit = GrantTableOp.maximumFrames
    /// Dead, with mappings of others' grants still to give back (releaseDeadDomains). Under the
    /// scheduler lock.
    var dropsGrantMappings = false
    /// hvm_op's parameters (HVM_PARAM_*): Tern's for the domains it builds, the toolstack's for the rest.
    /// A leaf lock.
    var hvmParameters = SpinLocked([UInt64](repeating: 0, count: HVMOp.parameterCount))

    init(spec: DomainSpec, slot: Int, firstVCPUSlot: Int, memory: PhysicalRange, ramBase: GuestPhysicalAddress,
         stage2: Stage2Table<PhysicalTableMemory>, tables: PhysicalTableMemory) {
        self.spec = spec
        self.firstVCPUSlot = firstVCPUSlot
        self.id = spec.id
        self.slot = slot
        self.name = spec.name
        self.privileged = spec.id == .zero
        self.vmid = vmids.vmid(slot: slot)
        self.memory = memory
        self.ramBase = ramBase
        self.physMap = SpinLocked(PhysMap(stage2: stage2, tables: tables, populatedPages: memory.size / pageSize,
                                          maximumPages: memory.size / pageSize))
        self.stage2Root = stage2.root
        self.weight = spec.weight
        self.cap = spec.cap
        self.affinity = spec.affinity
        self.hasUART = spec.uart
        self.xenPV = spec.xenPV
        // The guest layout's device windows never overlap (8 vCPUs' redistributors are 1 MiB).
        var devices = MMIORegions()
        let gic = devices.register(.gicDistributor, base: GuestLayout.gicDistributor, size: VirtualDistributor.size)
            && devices.register(.gicRedistributors, base: GuestLayout.gicRedistributors,
                                size: UInt64(spec.vcpus) * VirtualRedistributor.stride)
        let uart = !spec.uart || devices.register(.uart, base: GuestLayout.uart, size: VirtualUART.size)
        precondition(gic && uart, "overlapping device windows")
        self.mmio = devices
    }

    var vttbr: UInt64 { vmid << 48 | stage2Root.raw }

    /// The guest physical range its RAM occupies.
    var ram: (base: GuestPhysicalAddress, size: UInt64) { (ramBase, memory.size) }

    func withVGIC<R>(_ body: () -> R) -> R { withSpinLock(&vgicLock, body) }

    /// Runs `body` on its reference count, for TernCore's DomainReferences (the word's address is
    /// used only inside, where it is valid).
    @inline(__always) @discardableResult
    func withReferences<R>(_ body: (HostAtomicWord) -> R) -> R {
        withUnsafeMutablePointer(to: &referenceCount) { body(HostAtomicWord($0)) }
    }

    /// Maps one page of host memory at `page` of its address space (normal memory, never executable),
    /// under its physMap lock; `lent`: a frame of the hypervisor's it now owns (freed with it).
    func mapPage(_ page: GuestPhysicalAddress, to frame: HostPhysicalAddress, permissions: Permissions,
                 lent: Bool = false, borrowed: Bool = false) -> Bool {
        physMap.withLock { m in
            do throws(PageTableError) {
                try m.stage2.map(page, to: frame, size: pageSize, type: .normal, permissions: permissions,
                                 borrowed: borrowed, memory: &m.tables)
            } catch {
                return false
            }
            tern_stage2_sync()
            if lent { m.ownedFrames.append(frame) }
            return true
        }
    }

    /// The host address behind a guest-physical address in its RAM, or nil outside RAM (for a domain
    /// the toolstack built, also where it has no piece of RAM yet, or across two pieces).
    func hostAddress(ofRAM ipa: GuestPhysicalAddress, length: UInt64 = 1) -> HostPhysicalAddress? {
        let base = ramBase.raw
        guard memory.size == 0 else {
            guard ipa.raw >= base, length <= memory.size, ipa.raw - base <= memory.size - length else { return nil }
            return memory.base + (ipa.raw - base)
        }
        guard ipa.raw >= base else { return nil }
        let offset = ipa.raw - base, within = offset & (ramPieceSize - 1)
        let index = offset / ramPieceSize
        guard index < UInt64(ramPieces.count), length <= ramPieceSize - within else { return nil }
        let piece = ramPieces[Int(index)]
        return piece == 0 ? nil : HostPhysicalAddress(piece + within)
    }

    /// Whether `[host, host + length)` is its own RAM (its block, or one of its pieces).
    func ownsRAM(_ host: HostPhysicalAddress, length: UInt64 = 1) -> Bool {
        if memory.size != 0 { return memory.contains(host, length: length) }
        for piece in ramPieces where piece != 0 && host.raw >= piece && length <= ramPieceSize && host.raw - piece <= ramPieceSize - length {
            return true
        }
        return false
    }

    /// Called from a trap of one of its vCPUs, with no lock held: the end of a Linux panic report ends
    /// the domain here.
    func consoleWrite(_ bytes: UnsafeBufferPointer<UInt8>) {
        let panicEnded = console.withLock { $0.write(bytes, domain: id, kept: !privileged) }
        if panicEnded && spec.watchesPanic { crashAfterPanic(self) }
    }

    /// Its console showed Linux's panic banner (and Tern is to believe it).
    var hasPanicked: Bool { spec.watchesPanic && console.withLock { $0.panic.hasBegun } }

    func flushConsole() {
        console.withLock { if !$0.isEmpty { $0.flush(domain: id, kept: !privileged) } }
    }
}

extension Domain {
    /// How many of its vCPUs are on CPUs (their state there, not yet saved). With every run queue's lock.
    var vcpusOnCPUs: Int { countVCPUsOnCPUs(self) }
    /// Which physical CPUs ran it, and how many of its vCPUs ran at the same moment at most: the
    /// evidence that a multi-vCPU domain really is spread across the machine.
    var pcpusUsed: UInt64 { vcpus.reduce(0) { $0 | $1.pcpusUsed } }
    var maximumConcurrent: Int { min(vcpus.reduce(0) { max($0, $1.mostAtOnce) }, vcpus.count) }
}

@inline(never) private func countVCPUsOnCPUs(_ d: Domain) -> Int {
    var n = 0
    for v in d.vcpus where v.runningOn >= 0 { n += 1 }
    return n
}

/// A domain's event channels: its ports, and where their bits are in its memory (shared_info, or the
/// FIFO control blocks and event array once it asks for FIFO).
struct DomainEvents {
    /// The page the guest named as shared_info (one of its own RAM pages), once it has.
    var sharedInfo: HostPhysicalAddress?
    var ports = EventChannelTable()
    /// The FIFO ABI, once the guest asked for it (EVTCHNOP_init_control); nil means 2-level.
    var fifo: FIFOState?
}

/// A domain's grant table: where its frames are, its mappings of other domains' grants, and how many
/// of its own grants others use.
struct DomainGrants {
    var frames: [GrantFrame?] = []
    var maptrack = Maptrack()
    var active = ActiveGrants()
}

/// A grant-table frame: a page of the hypervisor's, placed in the domain's grant window once the guest
/// asks (the toolstack may have made and mapped it before, to seed the reserved grants).
struct GrantFrame: Equatable {
    var guest: GuestPhysicalAddress?
    let host: HostPhysicalAddress
}

/// A domain's stage 2, the frames the hypervisor lent it (console ring, grant frames, magic pages),
/// freed with it, how much RAM it has of how much it may, and the other domains' pages it maps.
struct PhysMap {
    var stage2: Stage2Table<PhysicalTableMemory>
    var tables: PhysicalTableMemory
    var ownedFrames: [HostPhysicalAddress] = []
    /// Pages it has (Xen's tot_pages: RAM not given back, and magic pages) and may have (max_pages).
    var populatedPages: UInt64
    var maximumPages: UInt64
    /// How many 2 MiB pieces of RAM a toolstack-built domain holds, those its balloon gave back and
    /// the hypervisor has not yet freed included (what max_pages limits).
    var ramPieceCount = 0
    /// One of its pieces may have neither pages nor uses (RAMPieces.swift sweeps).
    var hasUnusedPieces = false
    var foreign = ForeignMappings<Domain>()
}

struct UnimplementedReports {
    var keys: [UInt64] = []
}
