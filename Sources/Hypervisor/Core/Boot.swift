// From the firmware's hand-off to the first guest instruction: read the board from its device tree,
// take the memory, turn on the hypervisor's own MMU, set up the GIC and the traps, build the domains the
// boot configuration names, bring up the other CPUs and start scheduling.
import BareMetalSupport
import TernArch
import TernArchAsm
import TernCore

/// What guests may do without the hypervisor, and what traps: stage 2 on; physical interrupts, SErrors
/// and FIQs to EL2; WFI/WFE, SMC, implementation-defined and auxiliary-control registers and set/way
/// cache maintenance trapped; EL1 is AArch64; broadcast TLB and barrier operations inner shareable.
private let hcr: UInt64 = 1 << 0 | 1 << 1 | 1 << 3 | 1 << 4 | 1 << 5 | 1 << 9 | 1 << 10 | 1 << 13 | 1 << 14
    | 1 << 19 | 1 << 20 | 1 << 21 | 1 << 22 | 1 << 31

@_cdecl("tern_main")
func ternMain(_ dtbAddress: UInt64) -> Never {
    bootTicks = GenericTimer.now
    counterFrequency = GenericTimer.frequency
    startConsoleHistory()
    log { c in
        c.s("Tern ")
        c.s(ternVersion)
        c.s(" hypervisor (Xen 4.17 guest ABI) at EL2, image ")
        c.hex(bm_image_start())
        c.s("-")
        c.hex(bm_image_end())
    }
    let root: DTNode
    // The header's own size field bounds the parse (the parser then checks every offset against it).
    let dtbSize = Int(UInt32(bigEndian: tern_load32(dtbAddress + 4)))
    do throws(DeviceTreeError) {
        guard dtbSize <= 0x20_0000 else { throw .truncated }
        root = try FlattenedDeviceTree.parse(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(dtbAddress)), count: dtbSize))
    } catch {
        log { c in
            c.s("no valid device tree at ")
            c.hex(dtbAddress)
            c.s("; halted")
        }
        while true { tern_wfi() }
    }
    let (found, problem) = Platform.read(root)
    guard let found else {
        log { c in
            c.s("the device tree does not describe a usable machine: ")
            switch problem {
            case .noMemory: c.s("no memory")
            case .noGIC: c.s("no GICv3")
            default: c.s("no CPUs")
            }
        }
        while true { tern_wfi() }
    }
    platform = found
    tern_uart_base = platform.uart.raw
    firmware = Firmware(usesHVC: platform.psciUsesHVC)

    let dtb = PhysicalRange(base: HostPhysicalAddress(alignDown(dtbAddress, pageSize)),
                            end: HostPhysicalAddress(alignUp(dtbAddress + UInt64(dtbSize), pageSize)))
    takeMemory(root, dtb: dtb)
    enableMMU()
    gic = GICv3(distributor: platform.gicDistributor, redistributors: platform.gicRedistributors,
                redistributorsSize: platform.gicRedistributorsSize)
    gic.initializeDistributor()

    let usable = usableCPUs()
    for (i, affinity) in usable.prefix(maximumCPUs).enumerated() {
        let cpu = PhysicalCPU(index: i, affinity: affinity)
        cpus.append(cpu)
        registerCPUObject(cpu)
    }
    if usable.count > maximumCPUs {
        log { c in
            c.s("the machine has ")
            c.dec(usable.count)
            c.s(" usable cpus; Tern runs on ")
            c.dec(maximumCPUs)
            c.s(" of them, the boot cpu first")
        }
    }
    vmids = VMIDs(mmfr1: read_id_aa64mmfr1_el1())
    allocateTables(cpus: cpus.count)
    prepareCPU(cpus[0])

    readRealTimeClock()
    createBootDomains(root, dtb: dtb)
    log { c in
        c.s("boot done in ")
        c.dec(now().raw / 1000)
        c.s(" us: ")
        c.dec(domainsAlive)
        c.s(" domains, ")
        c.dec(cpus.count)
        c.s(" pcpus, ")
        c.dec(frames.freePages / 256)
        c.s(" MiB free")
    }
    if domainsAlive == 0 { log("no domains to run") }

    for cpu in cpus.dropFirst() {
        let r = firmware.cpuOn(mpidr: cpu.affinity.raw, entry: tern_secondary_entry_address(), context: UInt64(cpu.index))
        if r != 0 {
            log { c in
                c.s("pcpu")
                c.dec(cpu.index)
                c.s(" did not start (PSCI ")
                c.dec(Int(r))
                c.s(")")
            }
        }
    }
    enableConsoleInput()
    lockScheduler()
    tern_enter_guest(schedule(cpus[0]), cpus[0].stackTop)
}

/// The tree's CPUs, this (boot) CPU first whatever the tree's order: it runs on stack 0 as cpus[0].
/// A CPU whose Aff0 is 16 or more can be sent SGIs only through the GIC's range selector; without it
/// (GICD_TYPER.RSS) such a CPU could never be kicked, so it is left off, and said so.
private func usableCPUs() -> [CPUAffinity] {
    // One stack and one pair of CPU words per CPU: the image reserves TERN_MAXIMUM_CPUS of them.
    precondition(maximumCPUs <= Int(TERN_MAXIMUM_CPUS), "more CPUs than the image has stacks for")
    let me = CPUAffinity(mpidr: read_mpidr_el1())
    let rangeSelector = gic.supportsRangeSelector
    var usable = [me]
    for a in platform.cpuAffinities where a != me {
        if a.aff0 >= 16 && !rangeSelector {
            log { c in
                c.s("cpu ")
                c.hex(a.raw)
                c.s(" left off: its Aff0 needs the GIC's range selector, which this GIC lacks")
            }
            continue
        }
        usable.append(a)
    }
    return usable
}

@_cdecl("tern_secondary_main")
func ternSecondaryMain(_ index: UInt64) -> Never {
    let cpu = cpus[Int(index)]
    prepareCPU(cpu)
    lockScheduler()
    tern_enter_guest(schedule(cpu), cpu.stackTop)
}

/// Per-CPU EL2 setup: traps, stage-2 format, the GIC's CPU interfaces, timers.
private func prepareCPU(_ cpu: PhysicalCPU) {
    // The boot CPU's VMID width holds for every CPU: one with fewer bits would treat VTCR.VS as
    // reserved and give domains past slot 254 each other's TLB entries.
    let own = VMIDs(mmfr1: read_id_aa64mmfr1_el1())
    if own.bits < vmids.bits {
        log { c in
            c.s("pcpu")
            c.dec(cpu.index)
            c.s(" has ")
            c.dec(own.bits)
            c.s("-bit VMIDs, fewer than the boot cpu's ")
            c.dec(vmids.bits)
            c.s("; it stays off")
        }
        while true { tern_wfi() }
    }
    write_hcr_el2(hcr)
    write_vtcr_el2(Stage2Table<PhysicalTableMemory>.vtcr | vmids.vtcrBits)
    write_cptr_el2(0x33FF)
    write_vpidr_el2(read_midr_el1())
    GenericTimer.configureForGuests()
    tern_isb()
    gic.initializeCPU(affinity: cpu.affinity)
    guard let frame = gic.sgiFrame(affinity: cpu.affinity) else {
        // Without its redistributor Tern cannot hold the virtual timer's interrupt for a guest.
        log { c in
            c.s("pcpu")
            c.dec(cpu.index)
            c.s(" has no redistributor in the device tree; it stays off")
        }
        if cpu.index == 0 { firmware.systemOff() }
        while true { tern_wfi() }
    }
    cpu.sgiFrame = frame
    cpu.online = true
}

/// This image and what lies below it in the first bank of RAM: Tern's, never a domain's.
private var ternImage: PhysicalRange {
    PhysicalRange(base: platform.ram[0].base, end: HostPhysicalAddress(alignUp(bm_image_end(), pageSize)))
}

/// All RAM goes to the frame allocator except what is already spoken for: this image (and what lies
/// below it), the DTB and the boot modules.
private func takeMemory(_ root: DTNode, dtb: PhysicalRange) {
    var low = UInt64.max, high: UInt64 = 0
    for bank in platform.ram {
        frames.addFree(bank)
        low = min(low, bank.base.raw)
        high = max(high, bank.end.raw)
    }
    ramPieceTable = RAMPieceTable(base: low, end: high)
    frames.reserve(dtb)
    frames.reserve(ternImage)
    guard let chosen = root.child("chosen") else { return }
    for node in chosen.all(where: { $0.isCompatible("multiboot,module") }) {
        let parent = chosen.parent(of: node) ?? chosen
        // One outside RAM is not Tern's to keep (and a domain naming it is refused).
        for r in node.reg(in: parent) where r.size > 0 {
            guard let m = DomainSpec.bootModule(address: r.address, size: r.size, ram: platform.ram) else { continue }
            frames.reserve(PhysicalRange(base: HostPhysicalAddress(alignDown(m.base.raw, pageSize)),
                                         end: HostPhysicalAddress(alignUp(m.end.raw, pageSize))))
        }
    }
}

/// A domain node Tern cannot build, and why: skipped, the others still start.
private func logRefusedNode(_ node: DTNode, _ problem: DomainNodeProblem) {
    log { c in
        c.s("domain node ")
        c.bytes(node.name)
        switch problem {
        case .noKernel: c.s(" has no multiboot,kernel module")
        case .memory(let kb):
            c.s(" asks for memory = ")
            c.dec(kb)
            c.s(" KiB (1 MiB to 1 PiB)")
        case .vcpus(let n):
            c.s(" asks for cpus = ")
            c.dec(UInt64(n))
            c.s(" (1-")
            c.dec(TernLimits.maximumVCPUsPerDomain)
            c.s(")")
        case .moduleOutsideRAM(let address, let size), .moduleOverTern(let address, let size):
            c.s(" has a module at ")
            c.hex(address)
            c.s(" of ")
            c.dec(size)
            if case .moduleOverTern = problem { c.s(" bytes, over Tern's own memory") } else { c.s(" bytes, not in RAM") }
        }
        c.s("; skipped")
    }
}

/// The hypervisor's own stage 1: an identity map, devices below RAM, RAM cacheable.
private func enableMMU() {
    var memory = PhysicalTableMemory()
    do {
        var table = try HypervisorTable(memory: &memory)
        try table.identityMap(HostPhysicalAddress(0), size: platform.ram[0].base.raw, type: .device,
                              writable: true, executable: false, memory: &memory)
        for bank in platform.ram {
            try table.identityMap(bank.base, size: bank.size, type: .normal, writable: true, executable: true,
                                  memory: &memory)
        }
        tern_enable_mmu(table.root.raw, HypervisorTable<PhysicalTableMemory>.tcr, HypervisorTable<PhysicalTableMemory>.mair)
    } catch {
        log("could not build the hypervisor's page tables; continuing with the MMU off")
    }
}

private func createBootDomains(_ root: DTNode, dtb: PhysicalRange) {
    guard let chosen = root.child("chosen") else { return }
    if let seed = chosen.property("rng-seed")?.value { bootEntropy = BootEntropy(hostSeed: seed) }
    let nodes = chosen.children.filter { $0.isCompatible("xen,domain") }
    // Each domain's ID, as the configuration names it (else its place): all refused if any is reserved
    // or repeated, since two domains with one ID would each receive the other's events and grants.
    let ids = nodes.indices.map { nodes[$0].property("tern,domid")?.u32 ?? UInt32($0) }
    if let problem = DomainIDs.check(ids) {
        log { c in
            c.s("the boot configuration ")
            switch problem {
            case .reserved(let index, let id):
                c.s("gives domain node ")
                c.bytes(nodes[index].name)
                c.s(" ID ")
                c.dec(UInt64(id))
                c.s(", which is not below Xen's DOMID_FIRST_RESERVED (")
                c.dec(UInt64(DomainIDs.firstReserved))
                c.s(")")
            case .repeated(let index, let first, let id):
                c.s("gives domain nodes ")
                c.bytes(nodes[first].name)
                c.s(" and ")
                c.bytes(nodes[index].name)
                c.s(" the same ID ")
                c.dec(UInt64(id))
            }
            c.s(": none started")
        }
        return
    }
    var specs: [DomainSpec] = []
    for (node, id) in zip(nodes, ids) {
        switch DomainSpec.read(node, id: DomainID(UInt16(id)), ram: platform.ram, reserved: [ternImage, dtb]) {
        case .spec(let spec): specs.append(spec)
        case .refused(let problem): logRefusedNode(node, problem)
        }
    }
    specs.sortByDomainID { $0.id }
    // A request beyond a limit is refused whole, never cut short: starting some of the domains asked
    // for would leave the others silently missing.
    guard specs.count <= vmids.domainLimit else {
        log { c in
            c.s("the boot configuration asks for ")
            c.dec(specs.count)
            c.s(" domains; this CPU's ")
            c.dec(vmids.bits)
            c.s("-bit VMIDs tell at most ")
            c.dec(vmids.domainLimit)
            c.s(" apart: none started")
        }
        return
    }
    let vcpusAsked = specs.reduce(0) { $0 + $1.vcpus }
    guard growTables(domains: specs.count, vcpus: vcpusAsked) else {
        log { c in
            c.s("the boot configuration asks for ")
            c.dec(specs.count)
            c.s(" domains with ")
            c.dec(vcpusAsked)
            c.s(" vcpus; the scheduler's tables for them would not fit the heap's largest block: none started")
        }
        return
    }
    // The toolstack's domains get IDs after the boot configuration's (Xen's rover).
    domainIDs = DomainIDAllocator(after: specs.last?.id.raw ?? 0)
    controlDomainAtBoot = specs.contains { $0.id == .zero }
    if let dom0 = specs.first(where: { $0.id == .zero }) {
        dom0Size = (Int(dom0.memoryBytes >> 20), dom0.vcpus)
    }
    var nextVCPU = 0
    for (slot, spec) in specs.enumerated() {
        let (built, failure) = buildDomain(spec, slot: slot, firstVCPUSlot: nextVCPU)
        guard let d = built else {
            log { c in
                c.s("d")
                c.dec(Int(spec.id.raw))
                c.s(" (")
                c.bytes(spec.name)
                c.s(") not created: ")
                switch failure {
                case .noMemory: c.s("not enough memory")
                case .notAnImage: c.s("the kernel is not an arm64 Image")
                case .tooLarge: c.s("kernel and ramdisk do not fit in its memory")
                default: c.s("could not build its page tables")
                }
            }
            continue
        }
        nextVCPU += spec.vcpus
        startDomain(d)
        log { c in
            c.domain(d)
            c.s(": ")
            c.dec(d.memory.size >> 20)
            c.s(" MiB at ")
            c.hex(d.memory.base.raw)
            c.s(", ")
            c.dec(d.vcpus.count)
            c.s(" vcpus, weight ")
            c.dec(UInt64(d.weight))
            if d.cap != 0 {
                c.s(", cap ")
                c.dec(UInt64(d.cap))
                c.s("%")
            }
        }
    }
}
