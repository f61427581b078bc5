// Turning a domain's description (TernCore's DomainSpec, from the boot device tree or the toolstack)
// into a running domain: memory, stage-2 tables, the kernel where its Image
// header asks, an initrd and a device tree at the top of RAM, and vCPU 0 at the kernel's entry.
import TernArch
import TernArchAsm
import TernCore

private let twoMiB: UInt64 = 0x20_0000

enum BuildFailure { case noMemory, notAnImage, tooLarge, tables }

/// Builds the domain in `slot`, its vCPUs in the scheduler slots from `firstVCPUSlot`. Called at boot,
/// single-threaded, or for a restart once the slots are free (the domain is nobody else's to see yet).
/// A restart passes `scrubbed`, its old RAM already zeroed and never given back meanwhile, so no other
/// allocation can take a piece of it; it is freed if the build fails.
func buildDomain(_ spec: DomainSpec, slot: Int, firstVCPUSlot: Int,
                 into scrubbed: PhysicalRange? = nil, restarts: Int = 0) -> (Domain?, BuildFailure?) {
    ensureHeapHeadroom()
    let pages = Int(spec.memoryBytes / pageSize)
    let reused = scrubbed.flatMap { $0.size == spec.memoryBytes ? $0.base : nil }
    if let scrubbed, reused == nil { freeScrubbedFrames(scrubbed.base, pages: Int(scrubbed.size / pageSize)) }
    guard let base = reused ?? allocateFrames(pages: pages, alignment: twoMiB) else { return (nil, .noMemory) }
    let memory = PhysicalRange(base: base, size: spec.memoryBytes)
    func fail(_ f: BuildFailure) -> (Domain?, BuildFailure?) {
        freeFrames(base, pages: pages)
        return (nil, f)
    }

    let k = spec.kernel.base.raw
    guard let start = UnsafeRawPointer(bitPattern: UInt(k)),
          let header = LinuxImage.Header(UnsafeRawBufferPointer(start: start, count: Int(min(spec.kernel.size, 64))))
    else { return fail(.notAnImage) }
    guard let layout = LinuxImage.layout(header, kernelSize: spec.kernel.size, ramdiskSize: spec.ramdisk?.size ?? 0,
                                         memoryBytes: spec.memoryBytes) else { return fail(.tooLarge) }
    let (textOffset, dtbOffset) = (layout.textOffset, layout.dtbOffset)

    // Direct-mapped RAM must still sit where guests expect RAM (above the device and grant windows,
    // below the 39-bit IPA limit).
    let ramBase = spec.directMapped ? GuestPhysicalAddress(base.raw) : GuestLayout.ram
    guard ramBase.raw >= GuestLayout.ram.raw, ramBase.raw + spec.memoryBytes <= 1 << 39 else { return fail(.tables) }
    // The control domain gets the board's real-time clock at its own address (below guest RAM).
    let rtc = spec.id == .zero ? platform.rtc : nil
    var tables = PhysicalTableMemory()
    var stage2: Stage2Table<PhysicalTableMemory>
    do {
        stage2 = try Stage2Table(memory: &tables)
        try stage2.map(ramBase, to: base, size: spec.memoryBytes, type: .normal,
                       permissions: [.read, .write, .execute], memory: &tables)
        if let rtc {
            try stage2.map(GuestPhysicalAddress(rtc.raw), to: rtc, size: pageSize, type: .device,
                           permissions: [.read, .write], memory: &tables)
        }
    } catch {
        tables.releaseAll()
        return fail(.tables)
    }
    // What its tables may grow to from here (granted pages it maps, magic pages), as Xen's dom0less
    // domains; the control domain's take what they need.
    if spec.id != .zero { tables.pool.bound(to: TablePool.defaultPages(memoryBytes: spec.memoryBytes, vcpus: spec.vcpus)) }

    tern_copy(base.raw + textOffset, k, spec.kernel.size)
    var initrd: (start: GuestPhysicalAddress, end: GuestPhysicalAddress)?
    if let rd = spec.ramdisk {
        let offset = layout.ramdiskOffset
        tern_copy(base.raw + offset, rd.base.raw, rd.size)
        initrd = (ramBase + offset, ramBase + offset + rd.size)
    }
    var machine = GuestMachine(
        memory: [(ramBase, spec.memoryBytes)], vcpus: spec.vcpus, bootargs: spec.bootargs, initrd: initrd,
        rngSeed: withSpinLock(&bootEntropyLock) { bootEntropy?.next() }, directMapped: spec.directMapped,
        xen: spec.xenPV, uart: spec.uart, rtc: rtc.map { GuestPhysicalAddress($0.raw) })
    machine.restarts = restarts
    let tree = GuestDeviceTree.build(machine)
    tree.withUnsafeBytes { b in
        tern_copy(base.raw + dtbOffset, UInt64(UInt(bitPattern: b.baseAddress!)), UInt64(b.count))
    }

    let d = Domain(spec: spec, slot: slot, firstVCPUSlot: firstVCPUSlot, memory: memory, ramBase: ramBase,
                   stage2: stage2, tables: tables)
    if spec.xenPV && !preparePVConsole(d) {
        releaseDomainMemory(d)
        return (nil, .tables)
    }
    if spec.xenPV { initialHVMParameters(d) }
    if spec.xenPV && !d.privileged && controlDomainAtBoot && !prepareXenstoreChannel(d) {
        releaseDomainMemory(d)
        return (nil, .tables)
    }
    for i in 0 ..< spec.vcpus {
        d.vcpus.append(VCPU(domain: d, index: i, slot: firstVCPUSlot + i, count: spec.vcpus))
    }
    d.vcpus[0].reset(entry: ramBase + textOffset, x0: (ramBase + dtbOffset).raw)
    return (d, nil)
}

/// Gives back everything a domain holds: its RAM, the frames the hypervisor lent it, its stage-2 tables,
/// and whatever its VMID left in the TLBs (slots, and so VMIDs, are reused).
func releaseDomainMemory(_ d: Domain) {
    freeFrames(d.memory.base, pages: Int(d.memory.size / pageSize))
    releaseLentFrames(d)
    forgetTranslations(d)
}

/// Gives back the frames the hypervisor lent the domain, a toolstack-built domain's RAM pieces, and
/// its stage-2 tables.
func releaseLentFrames(_ d: Domain) {
    d.physMap.withLock { m in
        for frame in m.ownedFrames { freeFrames(frame, pages: 1) }
        m.ownedFrames.removeAll()
        for piece in d.ramPieces where piece != 0 {
            ramPieceTable.release(piece)
            freeFrames(HostPhysicalAddress(piece), pages: Int(ramPieceSize / pageSize))
        }
        if d.ramPieces.count > 0 { d.ramPieces.deallocate() }
        d.ramPieces = UnsafeMutableBufferPointer(start: nil, count: 0)
        m.ramPieceCount = 0
        m.tables.releaseAll()
    }
}

/// Invalidates every TLB entry of the domain's VMID on every CPU: `d` is the running domain (its VMID
/// is in VTTBR_EL2) or its VMID is put there meanwhile. Also what a change to its stage 2 takes, as
/// Xen's p2m flush: the whole VMID in one broadcast (TLBI VMALLS12E1IS), where by address it takes
/// two (the stage-2 entry, then every combined stage-1+2 one), and on QEMU each broadcast stops
/// every CPU.
func forgetTranslations(_ d: Domain) {
    let saved = read_vttbr_el2()
    if saved == d.vttbr {
        tern_tlbi_vmalls12e1is()
        return
    }
    write_vttbr_el2(d.vttbr)
    tern_isb()
    tern_tlbi_vmalls12e1is()
    write_vttbr_el2(saved)
    tern_isb()
}

/// Makes a built domain runnable: registers it with the scheduler and starts vCPU 0.
func startDomain(_ d: Domain) {
    domains[d.slot] = d
    scheduler.addDomain(d.slot, weight: d.weight, cap: d.cap)
    let t = now()
    d.startedAt = t
    let mask = d.affinity & ((1 << UInt64(cpus.count)) - 1)
    for v in d.vcpus {
        vcpuSlots[v.slot] = v
        scheduler.addVCPU(v.slot, domain: d.slot, affinity: mask == 0 ? (1 << UInt64(cpus.count)) - 1 : mask, now: t)
    }
    domainsAlive += 1
    let v0 = d.vcpus[0]
    v0.online = true
    wake(v0)
}

/// Where each domain's /chosen/rng-seed comes from: the host's, from the boot device tree (none
/// without one). Guarded by bootEntropyLock: domains restarting on two CPUs are rebuilt at once.
nonisolated(unsafe) var bootEntropy: BootEntropy?
nonisolated(unsafe) var bootEntropyLock: UInt32 = 0

/// Whether the boot configuration has a control domain (domain 0), which will run xenstored.
nonisolated(unsafe) var controlDomainAtBoot = false

/// A boot-time domU with `xen,enhanced`, as Xen 4.17's dom0less builds it when there is a control
/// domain: a port unbound to domain 0 in HVM_PARAM_STORE_EVTCHN, and STORE_PFN all ones, which tells
/// Linux to wait on that port until init-dom0less in dom0 gives it a xenstore page, and xenstored,
/// introduced to it, says it is there.
func prepareXenstoreChannel(_ d: Domain) -> Bool {
    guard let port = d.events.withLock({ $0.ports.allocate(.unbound(remote: .zero)) }) else { return false }
    d.hvmParameters.withLock { p in
        p[Int(HVMParam.store_evtchn.rawValue)] = UInt64(port.raw)
        p[Int(HVMParam.store_pfn.rawValue)] = ~0
    }
    return true
}
