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
    expect("sched_op unknown command", Xen.call(.sched_op, 99), ENOSYS)
    expect("sched_op shutdown from unmapped", Xen.call(.sched_op, 2, unmapped), EFAULT)
    var reason: UInt32 = 77
    let badReason = withUnsafeMutablePointer(to: &reason) { Xen.call(.sched_op, 2, UInt64(UInt(bitPattern: $0))) }
    expect("sched_op shutdown with reason 77", badReason, EINVAL)
    expect("vcpu_op on vcpu 5 of 1", Xen.call(.vcpu_op, 3, 5), ENOENT)
    expect("PSCI_VERSION", guest_hvc0(0x8400_0000, 0, 0, 0), 0x10000)
    expect("unknown SMC", guest_smc0(0xC200_0000, 0, 0, 0), -1)
    expect("PSCI CPU_ON for a vcpu that does not exist", guest_hvc0(0xC400_0003, 9, GuestLayout.ram.raw, 0), -2)
    expectUndefined("hvc #1") { _ = guest_hvc1() }
    expectUndefined("read of ACTLR_EL1") { _ = guest_read_actlr() }
    expectUndefined("write of ACTLR_EL1") { guest_write_actlr(0) }
    expectUndefined("cache maintenance by set/way") { guest_dc_cisw() }
    expectUndefined("read of the EL1 physical timer") { _ = guest_read_cntp_ctl() }
    print("hostile: \(passed)/\(passed + failed) checks passed")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
