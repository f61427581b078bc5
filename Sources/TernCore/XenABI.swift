// Xen's guest ABI on Arm, as numbers. Names follow Xen's public headers (xen/include/public/*.h) so a
// reader can grep both; Tern's own code refers to these, never to bare literals.

public enum Hypercall: UInt64 {
    case memory_op = 12
    case xen_version = 17
    case console_io = 18
    case grant_table_op = 20
    case vcpu_op = 24
    case sched_op = 29
    case event_channel_op = 32
    case physdev_op = 33
    case hvm_op = 34
}

/// The immediate of `hvc` that marks a Xen hypercall (the number itself travels in x16).
public let xenHypercallImmediate: UInt64 = 0xEA1

/// Negative errno values as Xen returns them in x0.
public enum XenError: Int64 {
    case EPERM = 1, ENOENT = 2, ESRCH = 3, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSYS = 38
    @inlinable public var returnValue: UInt64 { UInt64(bitPattern: -rawValue) }
}

public enum XenVersionCommand: UInt64 {
    case version = 0, extraversion = 1, compile_info = 2, capabilities = 3, changeset = 4
    case platform_parameters = 5, get_features = 6, pagesize = 7, guest_handle = 8, commandline = 9
}

/// What Tern reports as its Xen version: the ABI level it implements.
public let xenMajor: UInt64 = 4
public let xenMinor: UInt64 = 17

public enum ConsoleIOCommand: UInt64 { case write = 0, read = 1 }

public enum SchedOpCommand: UInt64 {
    case yield = 0, block = 1, shutdown = 2, poll = 3, remote_shutdown = 4, shutdown_code = 5, watchdog = 6
}

/// `sched_shutdown.reason`.
public enum ShutdownReason: UInt32 {
    case poweroff = 0, reboot = 1, suspend = 2, crash = 3, watchdog = 4
    public var name: StaticString {
        switch self {
        case .poweroff: "poweroff"
        case .reboot: "reboot"
        case .suspend: "suspend"
        case .crash: "crash"
        case .watchdog: "watchdog"
        }
    }
}

public enum VCPUOpCommand: UInt64 {
    case initialise = 0, up = 1, down = 2, is_up = 3, get_runstate_info = 4
    case register_runstate_memory_area = 5, register_vcpu_info = 10
}

/// XENFEAT_* bit numbers reported by XENVER_get_features.
public enum XenFeature: UInt32 {
    case writable_page_tables = 0, writable_descriptor_tables = 1, auto_translated_physmap = 2
    case supervisor_mode_kernel = 3, pae_pgdir_above_4gb = 4, mmu_pt_update_preserve_ad = 5
    case hvm_callback_vector = 8, hvm_safe_pvclock = 9, hvm_pirqs = 10, dom0 = 11
}

/// PSCI and SMCCC function ids (Arm DEN0022 / DEN0028) and return codes.
public enum PSCIFunction: UInt32 {
    case version = 0x8400_0000
    case cpu_suspend32 = 0x8400_0001, cpu_suspend = 0xC400_0001
    case cpu_off = 0x8400_0002
    case cpu_on32 = 0x8400_0003, cpu_on = 0xC400_0003
    case affinity_info32 = 0x8400_0004, affinity_info = 0xC400_0004
    case migrate_info_type = 0x8400_0006
    case system_off = 0x8400_0008, system_reset = 0x8400_0009
    case features = 0x8400_000A
    case smccc_version = 0x8000_0000, smccc_arch_features = 0x8000_0001
}

public enum PSCIResult: Int64 {
    case success = 0, notSupported = -1, invalidParameters = -2, denied = -3, alreadyOn = -4
    case onPending = -5, internalFailure = -6
    @inlinable public var returnValue: UInt64 { UInt64(bitPattern: rawValue) }
}
