// One fuzzing operation, drawn from the whole surface a guest has: any hypercall number with sub-ops
// and structures from the value pool, MMIO of every width to the virtual GIC, the UART, the grant
// window and holes, the trapped system registers, PSCI and SMCs, and waits with the timer in the past,
// now or soon. Left out are only the calls that end or stop the fuzzer by design (shutdown, watchdogs,
// CPU_OFF, SYSTEM_OFF/RESET/SUSPEND): they reach no check in a new way and would cut the run short.
import GuestKit
import GuestKitAsm
import TernCore

struct Fuzzer {
    var random: SplitMix64
    let arena: Arena
    let vcpus: Int
    let stats: Stats
    /// The other fuzzing domain, if there is one (Peer.swift), and this vCPU's mappings of its grants.
    let peer: UInt16?
    var handles = [UInt32](repeating: .max, count: Fuzzer.mapSlots)
    /// The privileged mode (Privileged.swift): it is the control domain, and domains 1...victims are
    /// sacrificial.
    let privileged: Bool
    let victims: Int

    init(random: SplitMix64, arena: Arena, vcpus: Int, stats: Stats, peer: UInt16?, privileged: Bool = false, victims: Int = 0) {
        self.random = random
        self.arena = arena
        self.vcpus = vcpus
        self.stats = stats
        self.peer = peer
        self.privileged = privileged
        self.victims = victims
    }

    mutating func step() {
        switch random.below(100) {
        case 0 ..< 50: hypercall()
        case 50 ..< 60:
            if let peer { peerOperation(peer) } else { hypercall() }
        case 60 ..< 78: mmio()
        case 78 ..< 88: systemRegister()
        case 88 ..< 94: psci()
        case 94 ..< 98: wait()
        default:
            Xen.yield()
            stats.count(.yields)
        }
        stats.count(.ops)
    }

    // MARK: Hypercalls

    mutating func hypercallNumber() -> UInt64 {
        switch random.below(20) {
        case 0: return Hypercall.platform_op.rawValue
        case 1, 2: return Hypercall.memory_op.rawValue
        case 3: return Hypercall.multicall.rawValue
        case 4: return Hypercall.xen_version.rawValue
        case 5: return Hypercall.console_io.rawValue
        case 6, 7: return Hypercall.grant_table_op.rawValue
        case 8: return Hypercall.vm_assist.rawValue
        case 9: return Hypercall.vcpu_op.rawValue
        case 10: return Hypercall.sched_op.rawValue
        case 11, 12: return Hypercall.event_channel_op.rawValue
        case 13: return Hypercall.physdev_op.rawValue
        case 14: return Hypercall.hvm_op.rawValue
        case 15: return Hypercall.sysctl.rawValue
        case 16: return Hypercall.domctl.rawValue
        case 17: return random.below(64)
        case 18: return 64 + random.below(64)
        default: return random.next()
        }
    }

    mutating func hypercall() {
        let number = privileged && random.below(4) == 0 ? Hypercall.domctl.rawValue : hypercallNumber()
        var a0 = random.below(4) == 0 ? random.integer() : random.below(32)
        var a1 = random.safeValue(arena), a2 = random.safeValue(arena)
        let a3 = random.safeValue(arena), a4 = random.safeValue(arena)
        // These take one structure, whose first word is the command (and an interface version).
        let structured = number == Hypercall.platform_op.rawValue || number == Hypercall.sysctl.rawValue
            || number == Hypercall.domctl.rawValue
        if structured || number == Hypercall.multicall.rawValue { a0 = random.pointer(arena) }
        // A privileged domctl's structure is where the command and domain can be set (Privileged.swift).
        if privileged && number == Hypercall.domctl.rawValue && !(arena.contains(a0) && a0 & 7 == 0) {
            a0 = arena.scratch + random.below(Arena.pages) * 4096 + random.below(64) * 8
        }
        random.fill(a0, words: 24, arena)
        random.fill(a1, words: 24, arena)
        random.fill(a2, words: 24, arena)
        var command = a0
        // A misaligned structure keeps what fill left in it (the command word cannot be stored
        // misaligned in the guest's device memory), so it counts as no sub-op; nor does one with
        // another interface version, which is refused before its command is looked at.
        if structured { command = 64 }
        var versioned = false
        if structured, arena.contains(a0), a0 & 7 == 0 {
            // cmd, then the version Xen 4.17 expects most of the time, so the command is looked at.
            command = random.below(4) == 0 ? random.integer() : random.below(80)
            if privileged && number == Hypercall.domctl.rawValue { command = privilegedDomctl(command) }
            let version: UInt64 = number == Hypercall.platform_op.rawValue ? 0x0300_0001 : 0x15
            let other = random.below(4) == 0 ? random.integer() & 0xFFFF_FFFF : version
            let stored = arena.isOwn(other) ? version : other
            guest_store64(a0, command & 0xFFFF_FFFF | stored << 32)
            versioned = stored == version
            // The domain a privileged domctl acts on: never itself (Privileged.swift).
            if privileged && number == Hypercall.domctl.rawValue {
                guest_store16(a0 + 8, targetDomain())
                if command & 0xFFFF_FFFF == 1 && random.below(2) == 0 { wellFormedCreation(at: a0) }
            }
        }
        if number == Hypercall.multicall.rawValue { multicallEntries(at: a0, count: &a1) }
        if number == Hypercall.console_io.rawValue && a0 == 0 { a1 = random.below(48) }   // no flood of our own
        let sleeps = number == Hypercall.sched_op.rawValue
        if sleeps {
            // shutdown ends the fuzzer and remote_shutdown may be let end it; a watchdog it arms would
            // kill it later: the rest of sched_op, with a wake-up armed for those that sleep.
            if a0 == SchedOpCommand.shutdown.rawValue || a0 == SchedOpCommand.watchdog.rawValue || a0 == 4 { return }
            armWakeUp()
        }
        let result: Int64
        if random.below(4) == 0 {
            result = guest_hypercall(a0, a1, a2, a3, a4, number)
        } else {
            var broken: UInt64 = 0
            let seed = random.next()
            result = guest_hypercall_checked(a0, a1, a2, number, seed, &broken)
            if broken != 0 { stats.anomaly("hypercall \(number) command \(a0) changed \(broken) of x19-x29") }
        }
        if sleeps { write_cntv_ctl_el0(0) }
        // A structure that could not be read (-EFAULT) was refused before its command was looked at, a
        // call on a domain that is not there (-ESRCH) before its arguments were, and a domU's
        // control-plane call is refused (-EPERM) whatever its command: no sub-op reached.
        let reached = !structured || versioned && result != -14 && result != -3 && (privileged || result != -1)
        stats.hypercall(number, reached ? command : 64, result)
        if structured && result >= 0 && !privileged {
            stats.anomaly("hypercall \(number) command \(command) answered \(result) to a domU")
        }
    }

    /// A multicall's list, written as whole entries: each a call of the same pool (never sched_op,
    /// which Tern, like Xen, refuses inside a multicall anyway), so nested calls reach their handlers.
    mutating func multicallEntries(at list: UInt64, count: inout UInt64) {
        guard arena.contains(list) else { return }
        count = random.below(8) == 0 ? random.integer() : random.below(6)
        for i in 0 ..< min(count, 6) {
            let entry = (list & ~7) + i * 64
            guard arena.contains(entry + 63) else { return }
            let op = hypercallNumber()
            // A privileged domctl only as a call of its own, where the domain it names is chosen.
            let left = op == Hypercall.sched_op.rawValue || privileged && op == Hypercall.domctl.rawValue
            guest_store64(entry, left ? Hypercall.xen_version.rawValue : op)
            guest_store64(entry + 16, random.below(32))
            for word: UInt64 in 3 ..< 8 { guest_store64(entry + word * 8, random.safeValue(arena)) }
        }
    }

    // MARK: MMIO

    mutating func mmio() {
        let region = Region(rawValue: Int(random.below(6)))!
        let (base, size): (UInt64, UInt64)
        switch region {
        case .gicd: (base, size) = (GuestLayout.gicDistributor.raw, GuestLayout.gicDistributorSize)
        case .gicr: (base, size) = (GuestLayout.gicRedistributors.raw, UInt64(vcpus + 1) * VirtualRedistributor.stride)
        case .uart: (base, size) = (GuestLayout.uart.raw, GuestLayout.uartSize)
        case .grantWindow: (base, size) = (GuestLayout.grantTable.raw, 64 * 4096)
        case .hole: (base, size) = (random.below(2) == 0 ? 0x1000_0000 : 0x0301_1000, 0x1000)
        case .pastRAM: (base, size) = (arena.ramEnd, 0x10_0000)
        }
        let width = UInt64(1) << random.below(4)
        // Registers are mostly at small offsets of each 64 KiB frame; misaligned now and then.
        var offset = random.below(2) == 0 ? random.below(size) : random.below(min(size, 0x1000))
        if random.below(8) != 0 { offset &= ~(width - 1) }
        let address = base + offset
        // Not the entries it grants its peer (Peer.swift): a narrow write could piece a frame of its
        // own together in one, for the peer to write into.
        let ownEntry = region == .grantWindow && offset < Fuzzer.peerRefs * 8
        if random.below(2) == 0 && !ownEntry {
            // Past RAM are the peer's pages this domain maps (Peer.swift): no value naming a fuzzer's own
            // memory goes there (both are laid out alike), as none goes into a structure.
            let value = region == .pastRAM ? random.safeValue(arena) : random.value(arena)
            switch width {
            case 1: guest_store8(address, UInt8(truncatingIfNeeded: value))
            case 2: guest_store16(address, UInt16(truncatingIfNeeded: value))
            case 4: guest_store32(address, UInt32(truncatingIfNeeded: value))
            default: guest_store64(address, value)
            }
        } else {
            switch width {
            case 1: _ = guest_load8(address)
            case 2: _ = guest_load16(address)
            case 4: _ = guest_load32(address)
            default: _ = guest_load64(address)
            }
        }
        stats.count(region)
        stats.count(.mmio)
    }

    // MARK: System registers, PSCI, waits

    /// The trapped ones: ACTLR and set/way cache maintenance (undefined for a guest), the emulated EL1
    /// physical timer, and SGIs to random targets; and the virtual timer, set anywhere in time.
    mutating func systemRegister() {
        switch random.below(9) {
        case 0: _ = guest_read_actlr()
        case 1: guest_write_actlr(random.integer())
        case 2: guest_dc_cisw()
        case 3: _ = guest_read_cntp_ctl()
        case 4: write_cntp_ctl_el0(random.integer())
        case 5: write_cntp_cval_el0(timerValue())
        case 6: write_cntp_tval_el0(random.integer())
        case 7: write_icc_sgi1r_el1(random.below(2) == 0 ? random.next() : random.below(16) << 24 | random.integer() & 0x1_00FF_FFFF)
        default:
            write_cntv_cval_el0(timerValue())
            write_cntv_ctl_el0(random.below(4))
        }
        stats.count(.systemRegisters)
    }

    /// A compare value in the past, now, soon, or at the end of time.
    mutating func timerValue() -> UInt64 {
        let now = read_cntvct_el0()
        switch random.below(4) {
        case 0: return now &- random.below(1 << 20)
        case 1: return now
        case 2: return now + random.below(read_cntfrq_el0() / 1000)
        default: return random.below(2) == 0 ? ~0 : random.next()
        }
    }

    mutating func psci() {
        var function: UInt64
        var a1 = random.integer(), a2 = random.pointer(arena), a3 = random.integer()
        switch random.below(10) {
        case 0: function = UInt64(PSCIFunction.version.rawValue)
        case 1:
            function = UInt64(PSCIFunction.features.rawValue)
            a1 = random.below(2) == 0 ? 0x8400_0000 + random.below(32) : random.integer()
        case 2: function = UInt64(random.below(2) == 0 ? PSCIFunction.affinity_info.rawValue : PSCIFunction.affinity_info32.rawValue)
        case 3:
            // CPU_ON: every vCPU is on, so a named one answers ALREADY_ON; the rest name none.
            function = UInt64(random.below(2) == 0 ? PSCIFunction.cpu_on.rawValue : PSCIFunction.cpu_on32.rawValue)
            if random.below(2) == 0 { a1 = CPUAffinity(vcpu: Int(random.below(UInt64(vcpus) + 2))).raw }
        case 4:
            function = UInt64(PSCIFunction.cpu_suspend.rawValue)
            armWakeUp()
        case 5: function = UInt64(PSCIFunction.migrate_info_type.rawValue)
        case 6: function = UInt64(random.below(2) == 0 ? PSCIFunction.smccc_version.rawValue : PSCIFunction.smccc_arch_features.rawValue)
        case 7: function = 0x8400_0000 + random.below(32)
        case 8: function = 0xC400_0000 + random.below(32)
        default: function = random.next()
        }
        if random.below(4) == 0 { function |= random.next() << 32 }     // only W0 names the function
        if Self.endsTheFuzzer(function) { function = UInt64(PSCIFunction.version.rawValue) }
        if Self.sleeps(function) { armWakeUp() }
        if random.below(4) == 0 {
            _ = guest_smc0(function, a1, a2, a3)
        } else {
            _ = guest_hvc0(function, a1, a2, a3)
        }
        write_cntv_ctl_el0(0)
        stats.count(.psci)
    }

    /// CPU_OFF, SYSTEM_OFF, SYSTEM_RESET, SYSTEM_SUSPEND and SYSTEM_RESET2, in either calling convention.
    static func endsTheFuzzer(_ function: UInt64) -> Bool {
        let w = UInt32(truncatingIfNeeded: function) & ~0x4000_0000
        return w == 0x8400_0002 || w == 0x8400_0008 || w == 0x8400_0009 || w == 0x8400_000E || w == 0x8400_0012
    }

    static func sleeps(_ function: UInt64) -> Bool {
        UInt32(truncatingIfNeeded: function) & ~0x4000_0000 == 0x8400_0001
    }

    /// WFI, WFE, SCHEDOP_block or SCHEDOP_poll on random ports, with the virtual timer armed in the
    /// past, now or within a millisecond to end it.
    mutating func wait() {
        armWakeUp()
        let now = read_cntvct_el0()
        switch random.below(3) {
        case 0: write_cntv_cval_el0(now &- random.below(1000))
        case 1: write_cntv_cval_el0(now)
        default: break
        }
        switch random.below(4) {
        case 0: guest_wfi()
        case 1: guest_wfe()
        case 2: Xen.block()
        default:
            let ports = random.pointer(arena)
            random.fill(ports, words: 4, arena)
            // struct sched_poll { ports, nr_ports, timeout }: no timeout, or one in the past or soon.
            var request: (UInt64, UInt64, UInt64) = (ports, random.below(6), random.below(2) == 0 ? 0 : Timer.nanoseconds + random.below(1_000_000))
            _ = Xen.call(.sched_op, SchedOpCommand.poll.rawValue, pointingTo: &request)
        }
        write_cntv_ctl_el0(0)
        stats.count(.waits)
    }

    /// The virtual timer due within a millisecond and its interrupt deliverable, whatever the fuzzing
    /// did to the GIC meanwhile: a vCPU that sleeps now is woken (its interrupts stay masked at the
    /// CPU, so nothing runs; the interrupt only ends the sleep).
    func armWakeUp() {
        Interrupts.routeTimer()
        write_cntv_cval_el0(read_cntvct_el0() + read_cntfrq_el0() / 1000)
        write_cntv_ctl_el0(1)
    }
}
