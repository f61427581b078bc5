// The hostile guest: bad hypercall numbers, bad pointers, bad arguments, forbidden system registers,
// unknown SMCs and HVCs. Each must come back as a Xen error code or an undefined-instruction exception
// in this guest, never as harm to the hypervisor or another domain.
import GuestKit
import GuestKitAsm
import TernCore

nonisolated(unsafe) var passed = 0
nonisolated(unsafe) var failed = 0

func expect(_ what: StaticString, _ got: Int64, _ want: Int64) {
    if got == want {
        passed += 1
        print("hostile: \(what): ok (\(got))")
    } else {
        failed += 1
        print("hostile: \(what): FAILED, got \(got), expected \(want)")
    }
}

func expectUndefined(_ what: StaticString, _ body: () -> Void) {
    let before = undefinedInstructions
    body()
    expect(what, Int64(undefinedInstructions - before), 1)
}

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    print("hostile: starting")
    let unmapped: UInt64 = 0x1000_0000        // no RAM or device there in a domU
    let ENOSYS: Int64 = -38, EFAULT: Int64 = -14, EINVAL: Int64 = -22, ENOENT: Int64 = -2
    expect("unknown hypercall 999", Xen.call(999), ENOSYS)
    expect("unknown hypercall 63", Xen.call(63), ENOSYS)
    expect("console_io write from unmapped buffer", Xen.call(.console_io, 0, 16, unmapped), EFAULT)
    expect("console_io write from a wild pointer", Xen.call(.console_io, 0, 16, 0xFFFF_0000_dead_0000), EFAULT)
    expect("console_io unknown command", Xen.call(.console_io, 7, 0, 0), ENOSYS)
    expect("console_io read from a domU", Xen.call(.console_io, 1, 16, GuestLayout.ram.raw), -1)
    expect("xen_version unknown command", Xen.call(.xen_version, 99), ENOSYS)
    expect("xen_version get_features to unmapped", Xen.call(.xen_version, 6, unmapped), EFAULT)
    expect("xen_version compile_info to unmapped", Xen.call(.xen_version, 2, unmapped), EFAULT)
    expect("xen_version capabilities to unmapped", Xen.call(.xen_version, 3, unmapped), EFAULT)
    // Denied as Xen denies it: "<denied>" and its NUL, and success.
    let denied = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
    defer { denied.deallocate() }
    denied.initialize(repeating: ~0, count: 2)
    expect("xen_version commandline from a domU", Xen.call(.xen_version, 9, UInt64(UInt(bitPattern: denied))), 0)
    expect("xen_version commandline from a domU says <denied>", Int64(bitPattern: denied[0]), 0x3E64_6569_6E65_643C)
    expect("xen_version build_id from a domU, before its argument is read", Xen.call(.xen_version, 10, unmapped), -1)
    expect("xen_version commandline from a domU ends there", Int64(bitPattern: denied[1]), Int64(bitPattern: ~0xFF))
    expect("sched_op unknown command", Xen.call(.sched_op, 99), ENOSYS)
    expect("sched_op shutdown from unmapped", Xen.call(.sched_op, 2, unmapped), EFAULT)
    var reason: UInt32 = 77
    let badReason = Xen.call(.sched_op, 2, pointingTo: &reason)
    expect("sched_op shutdown with reason 77", badReason, EINVAL)
    expect("sched_op watchdog from unmapped", Xen.call(.sched_op, 6, unmapped), EFAULT)
    var poke: (UInt32, UInt32) = (3, 1)
    expect("sched_op watchdog poke of id 3", Xen.call(.sched_op, 6, pointingTo: &poke), EINVAL)
    expect("vcpu_op on vcpu 5 of 1", Xen.call(.vcpu_op, 3, 5), ENOENT)
    xenPVChecks(unmapped: unmapped)
    expect("PSCI_VERSION", guest_hvc0(0x8400_0000, 0, 0, 0), 0x10000)
    expect("unknown SMC", guest_smc0(0xC200_0000, 0, 0, 0), -1)
    expect("PSCI CPU_ON for a vcpu that does not exist", guest_hvc0(0xC400_0003, 9, GuestLayout.ram.raw, 0), -2)
    // A virtual timer set to the end of time, then a sleep bounded by a poll timeout: the hypervisor
    // converts that compare value without overflowing and wakes us at the timeout.
    write_cntv_cval_el0(.max)
    write_cntv_ctl_el0(1)
    expect("poll with the timer at the end of time", Xen.poll(until: (Timer.milliseconds + 20) * 1_000_000), 0)
    write_cntv_ctl_el0(0)
    expectUndefined("hvc #1") { _ = guest_hvc1() }
    expectUndefined("read of ACTLR_EL1") { _ = guest_read_actlr() }
    expectUndefined("write of ACTLR_EL1") { guest_write_actlr(0) }
    expectUndefined("cache maintenance by set/way") { guest_dc_cisw() }
    // The EL1 physical timer is emulated (as Xen's vtimer does): off until the guest turns it on.
    expect("read of the EL1 physical timer's control", Int64(guest_read_cntp_ctl()), 0)
    print("hostile: \(passed)/\(passed + failed) checks passed")
    Xen.shutdown(.poweroff)
}

/// The PV interfaces: every structure comes from guest memory and every frame number names guest
/// memory, so each is tried unmapped, out of range and on behalf of someone else.
func xenPVChecks(unmapped: UInt64) {
    let EPERM: Int64 = -1, ENOENT: Int64 = -2, EFAULT: Int64 = -14, EINVAL: Int64 = -22, EACCES: Int64 = -13
    var buffer: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    func call(_ h: Hypercall, _ command: UInt64, _ words: (UInt64, UInt64, UInt64, UInt64), extra: UInt64 = 0) -> Int64 {
        buffer = words
        return withUnsafeMutablePointer(to: &buffer) { p in
            let address = UInt64(UInt(bitPattern: p))
            return h == .vcpu_op ? Xen.call(h, command, extra, address) : Xen.call(h, command, address, extra)
        }
    }
    let own = UInt64(domidSelf)
    // memory_op(add_to_physmap): { domid, size, space } { idx } { gpfn }
    expect("add_to_physmap from unmapped", Xen.call(.memory_op, 7, unmapped), EFAULT)
    expect("shared_info outside RAM", call(.memory_op, 7, (own, 0, 0x10000, 0)), EINVAL)
    expect("shared_info for domain 5", call(.memory_op, 7, (5, 0, GuestLayout.ram.raw >> 12 + 1, 0)), EPERM)
    expect("grant frame 999", call(.memory_op, 7, (own | 1 << 32, 999, 0x38000, 0)), EINVAL)
    expect("grant frame over RAM", call(.memory_op, 7, (own | 1 << 32, 0, GuestLayout.ram.raw >> 12, 0)), EINVAL)
    // The toolstack's memory_op is the control domain's: dom0's memory, its pages, its grant table.
    // The frame list and the result live where the compiler cannot keep them in registers.
    let words = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
    defer { words.deallocate() }
    let frame = GuestLayout.ram.raw >> 12
    words[0] = frame
    let frameAt = UInt64(UInt(bitPattern: words)), resultAt = frameAt + 8
    // xen_memory_reservation { extent_start, nr_extents, extent_order, mem_flags, domid }
    expect("populate_physmap for domain 0", call(.memory_op, 6, (frameAt, 1, 0, 0)), EPERM)
    expect("decrease_reservation for domain 0", call(.memory_op, 1, (frameAt, 1, 0, 0)), EPERM)
    // add_to_physmap_batch { domid, space gmfn_foreign, size 1, foreign dom0 } { idxs } { gpfns } { errs }:
    // the call is done, the page refused.
    words[1] = 99
    expect("map dom0's page (gmfn_foreign)", call(.memory_op, 23, (own | 4 << 16 | 1 << 32, frameAt, frameAt, resultAt)), 0)
    expect("map dom0's page: the page's result", Int64(Int32(truncatingIfNeeded: words[1])), EPERM)
    // acquire_resource { domid 0, type grant table } { nr_frames 1 } { frame 0 } { frame_list }
    expect("acquire dom0's grant table", call(.memory_op, 28, (1 << 16, 1, 0, frameAt)), EPERM)
    expect("remove_from_physmap of dom0's page", call(.memory_op, 15, (0, frame, 0, 0)), EPERM)
    // grant_table_op
    expect("gnttab query_size to unmapped", Xen.call(.grant_table_op, 6, unmapped, 1), EFAULT)
    expect("gnttab set_version 2", call(.grant_table_op, 8, (2, 0, 0, 0), extra: 1), EINVAL)
    expect("gnttab map from unmapped", Xen.call(.grant_table_op, 0, unmapped, 1), EFAULT)
    expect("gnttab map batch of a negative count", Xen.call(.grant_table_op, 0, GuestLayout.ram.raw, 0x8000_0000), EINVAL)
    checkLongGrantBatch()
    expect("gnttab unmap from unmapped", Xen.call(.grant_table_op, 1, unmapped, 1), EFAULT)
    expect("gnttab copy from unmapped", Xen.call(.grant_table_op, 5, unmapped, 1), EFAULT)
    // gnttab_cache_flush { dev_bus_addr, offset, length, op }: a host address of its own RAM only.
    expect("gnttab cache_flush with op 4", call(.grant_table_op, 12, (0x4000_0000, 16 << 16 | 4 << 32, 0, 0), extra: 1), EINVAL)
    expect("gnttab cache_flush past the page", call(.grant_table_op, 12, (0x4000_0000, 4000 | 200 << 16 | 1 << 32, 0, 0), extra: 1), EINVAL)
    expect("gnttab cache_flush of host page 0x1000", call(.grant_table_op, 12, (0x1000, 16 << 16 | 1 << 32, 0, 0), extra: 1), EPERM)
    expect("gnttab cache_flush of nothing", call(.grant_table_op, 12, (0x1000, 0, 0, 0), extra: 1), 0)
    expect("gnttab cache_flush by grant ref", call(.grant_table_op, 12, (8, 16 << 16 | 0x8000_0001 << 32, 0, 0), extra: 1), -95)
    // event_channel_op
    expect("evtchn send from unmapped", Xen.call(.event_channel_op, 4, unmapped), EFAULT)
    expect("evtchn send on port 5000", call(.event_channel_op, 4, (5000, 0, 0, 0)), EINVAL)
    expect("evtchn send on a free port", call(.event_channel_op, 4, (900, 0, 0, 0)), EINVAL)
    expect("evtchn unmask port 5000", call(.event_channel_op, 9, (5000, 0, 0, 0)), EINVAL)
    expect("evtchn close port 0", call(.event_channel_op, 3, (0, 0, 0, 0)), EINVAL)
    expect("evtchn bind_vcpu to vcpu 7", call(.event_channel_op, 8, (1 | 7 << 32, 0, 0, 0)), ENOENT)
    expect("evtchn alloc_unbound for domain 5", call(.event_channel_op, 6, (5, 0, 0, 0)), EPERM)
    // FIFO ABI set-up: control blocks and array pages must be 8-aligned pieces of our own RAM.
    let ram = GuestLayout.ram.raw >> 12
    expect("evtchn init_control for vcpu 4", call(.event_channel_op, 11, (ram, 4 << 32, 0, 0)), ENOENT)
    expect("evtchn init_control misaligned", call(.event_channel_op, 11, (ram, 4, 0, 0)), EINVAL)
    expect("evtchn init_control past the page", call(.event_channel_op, 11, (ram, 4088, 0, 0)), EINVAL)
    expect("evtchn init_control outside RAM", call(.event_channel_op, 11, (0x10000, 0, 0, 0)), EINVAL)
    expect("evtchn expand_array before init_control", call(.event_channel_op, 12, (ram, 0, 0, 0)), -95)
    expect("evtchn set_priority of a free port", call(.event_channel_op, 13, (900 | 3 << 32, 0, 0, 0)), EINVAL)
    // An IPI port: bound to an existing vCPU only, sendable, reported as EVTCHNSTAT_ipi, never rebound.
    expect("evtchn bind_ipi to vcpu 7", call(.event_channel_op, 7, (7, 0, 0, 0)), ENOENT)
    expect("evtchn bind_ipi to vcpu 0", call(.event_channel_op, 7, (0, 0, 0, 0)), 0)
    let ipi = buffer.0 >> 32
    expect("evtchn send on the IPI port", call(.event_channel_op, 4, (ipi, 0, 0, 0)), 0)
    _ = call(.event_channel_op, 5, (UInt64(domidSelf) | ipi << 32, 0, 0, 0))
    expect("evtchn status of the IPI port is ipi", Int64(buffer.1 & 0xFFFF_FFFF), 5)
    expect("evtchn bind_vcpu of the IPI port", call(.event_channel_op, 8, (ipi, 0, 0, 0)), EINVAL)
    expect("evtchn close of the IPI port", call(.event_channel_op, 3, (ipi, 0, 0, 0)), 0)
    // hvm_op
    expect("hvm get_param 999", call(.hvm_op, 1, (own | 999 << 32, 0, 0, 0)), EINVAL)
    expect("hvm get_param to unmapped", Xen.call(.hvm_op, 1, unmapped), EFAULT)
    expect("hvm set_param", call(.hvm_op, 0, (own | 17 << 32, 0, 0, 0)), EPERM)
    expect("hvm get_param of domain 0", call(.hvm_op, 1, (0 | 1 << 32, 0, 0, 0)), EPERM)
    expect("hvm set_param of domain 0", call(.hvm_op, 0, (0 | 1 << 32, 0, 0, 0)), EPERM)
    expect("evtchn status of dom0's port 1", call(.event_channel_op, 5, (0 | 1 << 32, 0, 0, 0)), EPERM)
    // vcpu_op: vcpu_info must fit in one page of our RAM; runstate must be mapped.
    expect("vcpu_info across a page end", call(.vcpu_op, 10, (GuestLayout.ram.raw >> 12, 4090, 0, 0)), EINVAL)
    expect("vcpu_info outside RAM", call(.vcpu_op, 10, (0x10000, 0, 0, 0)), EINVAL)
    expect("vcpu_info from unmapped", Xen.call(.vcpu_op, 10, 0, unmapped), EFAULT)
    expect("vcpu_info misaligned", call(.vcpu_op, 10, (GuestLayout.ram.raw >> 12 + 1, 4, 0, 0)), EINVAL)
    expect("runstate area at unmapped", call(.vcpu_op, 5, (unmapped, 0, 0, 0)), EFAULT)
    expect("runstate area misaligned", call(.vcpu_op, 5, (GuestLayout.ram.raw + 0x1004, 0, 0, 0)), EINVAL)
    expect("runstate area in the console ring page", call(.vcpu_op, 5, (MagicPages.console.raw, 0, 0, 0)), EFAULT)
    expect("get_runstate_info to unmapped", Xen.call(.vcpu_op, 4, 0, unmapped), EFAULT)
    var info: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (9, 0, 0, 0, 0, 0)
    let got = withUnsafeMutablePointer(to: &info) { Xen.call(.vcpu_op, 4, 0, UInt64(UInt(bitPattern: $0))) }
    expect("get_runstate_info of this vcpu", got, 0)
    expect("it is running, and has run", info.0 == 0 && info.2 > 0 ? 1 : 0, 1)
    // vm_assist(cmd, type): Arm has only runstate_update_flag (5).
    expect("vm_assist type 3", Xen.call(.vm_assist, 0, 3), EINVAL)
    expect("vm_assist command 7", Xen.call(.vm_assist, 7, 5), -38)
    // platform_op is the control domain's; as on Xen, a bad structure is said before that.
    var settime = XenPlatformOpSettime64()
    (settime.command, settime.interfaceVersion) = (PlatformOpCommand.settime64.rawValue, platformOpInterfaceVersion)
    let asked = withUnsafeMutablePointer(to: &settime) { Xen.call(.platform_op, UInt64(UInt(bitPattern: $0))) }
    expect("platform_op settime64 from a domU", asked, EPERM)
    settime.interfaceVersion = 0
    let oldVersion = withUnsafeMutablePointer(to: &settime) { Xen.call(.platform_op, UInt64(UInt(bitPattern: $0))) }
    expect("platform_op of another interface version", oldVersion, EACCES)
    expect("platform_op from unmapped", Xen.call(.platform_op, unmapped), EFAULT)
    // sysctl and domctl are the control domain's too (Xen's dummy XSM policy), after the same checks.
    var sysctl = XenSysctl()
    (sysctl.command, sysctl.interfaceVersion) = (SysctlCommand.getdomaininfolist.rawValue, sysctlInterfaceVersion)
    let listed = withUnsafeMutablePointer(to: &sysctl) { Xen.call(.sysctl, UInt64(UInt(bitPattern: $0))) }
    expect("sysctl getdomaininfolist from a domU", listed, EPERM)
    sysctl.interfaceVersion = 0x14
    let oldSysctl = withUnsafeMutablePointer(to: &sysctl) { Xen.call(.sysctl, UInt64(UInt(bitPattern: $0))) }
    expect("sysctl of another interface version", oldSysctl, EACCES)
    expect("sysctl from unmapped", Xen.call(.sysctl, unmapped), EFAULT)
    var domctl = XenDomctl()
    (domctl.command, domctl.interfaceVersion) = (DomctlCommand.getdomaininfo.rawValue, domctlInterfaceVersion)
    let asked0 = withUnsafeMutablePointer(to: &domctl) { Xen.call(.domctl, UInt64(UInt(bitPattern: $0))) }
    expect("domctl getdomaininfo of dom0 from a domU", asked0, EPERM)
    domctl.command = 1                                      // createdomain
    let created = withUnsafeMutablePointer(to: &domctl) { Xen.call(.domctl, UInt64(UInt(bitPattern: $0))) }
    expect("domctl createdomain from a domU", created, EPERM)
    // multicall: each entry's result in its entry; sched_op, which would leave the CPU, is not batched.
    var entries: [(op: UInt64, result: UInt64, args: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64))] = [
        (Hypercall.xen_version.rawValue, 1, (0, 0, 0, 0, 0, 0)),
        (Hypercall.memory_op.rawValue, 1, (MemoryOpCommand.get_sharing_freed_pages.rawValue, 0, 0, 0, 0, 0)),
        (Hypercall.sysctl.rawValue, 1, (unmapped, 0, 0, 0, 0, 0)),
        (Hypercall.sched_op.rawValue, 1, (SchedOpCommand.yield.rawValue, 0, 0, 0, 0, 0)),
    ]
    let batched = entries.withUnsafeMutableBufferPointer { Xen.call(.multicall, UInt64(UInt(bitPattern: $0.baseAddress!)), 4) }
    expect("multicall of four", batched, 0)
    expect("multicall's xen_version", Int64(bitPattern: entries[0].result), Int64(xenMajor << 16 | xenMinor))
    expect("multicall's sharing counter", Int64(bitPattern: entries[1].result), 0)
    expect("multicall's sysctl from unmapped", Int64(bitPattern: entries[2].result), EFAULT)
    expect("multicall's sched_op", Int64(bitPattern: entries[3].result), -38)
    expect("multicall from unmapped", Xen.call(.multicall, unmapped, 1), EFAULT)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}

/// A batch longer than one call does at EL2 goes on in continuations: each of 3000 maps (of a domain
/// that does not exist) gets its status, and the call its result, as on Xen.
func checkLongGrantBatch() {
    let count = 3000, size = MemoryLayout<GnttabMapGrantRef>.size
    let batch = UnsafeMutableRawPointer.allocate(byteCount: count * size, alignment: 8)
    let base = UInt64(UInt(bitPattern: batch))
    for i in 0 ..< count {
        let op = base + UInt64(i * size)
        // gnttab_map_grant_ref { host_addr, flags = host_map, ref = 8, dom = 99, status, handle, bus }
        guest_store64(op, 0x1000_0000)
        guest_store64(op + 8, 2 | 8 << 32)          // GNTMAP_host_map is 1 << 1
        guest_store64(op + 16, 99 | 0x7777 << 16)
        guest_store64(op + 24, 0)
    }
    expect("gnttab map batch of 3000 (continued)", Xen.call(.grant_table_op, 0, base, UInt64(count)), 0)
    var wrong = 0
    for i in 0 ..< count where guest_load32(base + UInt64(i * size + 16)) >> 16 != 0xFFFE { wrong += 1 }
    expect("gnttab map batch of 3000: statuses other than GNTST_bad_domain", Int64(wrong), 0)
    batch.deallocate()
}
