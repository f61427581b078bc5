// Xen's guest ABI on Arm, as numbers. Names follow Xen's public headers (xen/include/public/*.h) so a
// reader can grep both; Tern's own code refers to these, never to bare literals.

public enum Hypercall: UInt64 {
    case platform_op = 7
    case memory_op = 12
    case xen_version = 17
    case console_io = 18
    case grant_table_op = 20
    case vm_assist = 21
    case vcpu_op = 24
    case sched_op = 29
    case event_channel_op = 32
    case physdev_op = 33
    case hvm_op = 34
    case multicall = 13
    case xsm_op = 27
    case sysctl = 35
    case domctl = 36
}

/// The immediate of `hvc` that marks a Xen hypercall (the number itself travels in x16).
public let xenHypercallImmediate: UInt64 = 0xEA1

/// Negative errno values as Xen returns them in x0.
public enum XenError: Int64, Error {
    case EPERM = 1, ENOENT = 2, ESRCH = 3, E2BIG = 7, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EINVAL = 22, ENOSPC = 28, ENOSYS = 38, ENODATA = 61, EOVERFLOW = 75, EOPNOTSUPP = 95
    @inlinable public var returnValue: UInt64 { UInt64(bitPattern: -rawValue) }
}

extension Result where Failure == XenError {
    /// The failure's hypercall return value (0 for a success).
    public var errorValue: UInt64 {
        if case .failure(let e) = self { return e.returnValue }
        return 0
    }
}

public enum XenVersionCommand: UInt64 {
    case version = 0, extraversion = 1, compile_info = 2, capabilities = 3, changeset = 4
    case platform_parameters = 5, get_features = 6, pagesize = 7, guest_handle = 8, commandline = 9
    case build_id = 10
}

/// The answers' shapes: struct xen_compile_info is four char arrays (compiler 64, compile_by 16,
/// compile_domain 32, compile_date 32); capabilities and the command line are 1024 bytes, the
/// changeset 64, the guest handle (a UUID) 16.
public enum XenVersionLayout {
    public static let compiler = 0, compilerSize = 64
    public static let compileBy = 64, compileBySize = 16
    public static let compileDomain = 80, compileDomainSize = 32
    public static let compileDate = 112, compileDateSize = 32
    public static let capabilitiesSize = 1024, changesetSize = 64, guestHandleSize = 16, commandLineSize = 1024
}

/// What Tern reports as its Xen version: the ABI level it implements.
public let xenMajor: UInt64 = 4
public let xenMinor: UInt64 = 17

public enum ConsoleIOCommand: UInt64 { case write = 0, read = 1 }

public enum SchedOpCommand: UInt64 {
    case yield = 0, block = 1, shutdown = 2, poll = 3, remote_shutdown = 4, shutdown_code = 5, watchdog = 6
}

/// `sched_shutdown.reason`.
public enum ShutdownReason: UInt32, Sendable {
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
    case ARM_SMCCC_supported = 15, not_direct_mapped = 16, direct_mapped = 17
}

/// VIRQ_* numbers a guest may bind an event channel to.
/// VIRQ_DOM_EXC is global: the control domain's, bound on vCPU 0, raised when any domain shuts down,
/// dies or is gone (xenstored's cue to look, and to fire @releaseDomain).
public enum VIRQ: UInt32 { case timer = 0, debug = 1, console = 2, domainException = 3 }

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

/// DOMID_SELF: "the calling domain" wherever a hypercall takes a domain id.
public let domidSelf: UInt16 = 0x7FF0

/// Whether a hypercall's domid names the calling domain: DOMID_SELF or its own id.
@inlinable public func namesCaller(_ id: UInt16, _ caller: DomainID) -> Bool { id == domidSelf || id == caller.raw }

public enum MemoryOpCommand: UInt64 {
    case increase_reservation = 0, decrease_reservation = 1, maximum_ram_page = 2
    case current_reservation = 3, maximum_reservation = 4, populate_physmap = 6, add_to_physmap = 7
    case remove_from_physmap = 15, get_sharing_freed_pages = 18, get_sharing_shared_pages = 19
    case add_to_physmap_batch = 23, acquire_resource = 28
}

/// `xen_add_to_physmap.space`.
public enum XenMapSpace: UInt32 { case shared_info = 0, grant_table = 1, gmfn = 2, gmfn_range = 3, gmfn_foreign = 4 }

public enum GrantTableOpCommand: UInt64 {
    case map_grant_ref = 0, unmap_grant_ref = 1, setup_table = 2, dump_table = 3, transfer = 4
    case copy = 5, query_size = 6, unmap_and_replace = 7, set_version = 8, get_status_frames = 9
    case get_version = 10, swap_grant_ref = 11, cache_flush = 12
}

public enum EventChannelOpCommand: UInt64 {
    case bind_interdomain = 0, bind_virq = 1, bind_pirq = 2, close = 3, send = 4, status = 5
    case alloc_unbound = 6, bind_ipi = 7, bind_vcpu = 8, unmask = 9, reset = 10, init_control = 11
    case expand_array = 12, set_priority = 13
}

public enum HVMOpCommand: UInt64 { case set_param = 0, get_param = 1 }

/// HVM_PARAM_* indices a guest reads with HVMOP_get_param.
public enum HVMParam: UInt32 {
    case callback_irq = 0, store_pfn = 1, store_evtchn = 2, console_pfn = 17, console_evtchn = 18
}

/// HVM_PARAM_CALLBACK_IRQ's value on Arm: type PPI (2) in bits 63:56, level-low in the flags byte,
/// the PPI's INTID in the low byte.
public func callbackIRQParameter(ppi: UInt32) -> UInt64 { 2 << 56 | 2 << 8 | UInt64(ppi) }

/// Byte offsets in shared_info and vcpu_info on arm64 (xen/include/public/xen.h, arch-arm.h):
/// xen_ulong_t is 64 bits and XEN_LEGACY_MAX_VCPUS is 1.
public enum SharedInfoLayout {
    public static let size = 1088
    public static let vcpuInfo0 = 0
    public static let evtchnPending = 48
    public static let evtchnMask = 560
    public static let wcVersion = 1072
    public static let wcSec = 1076
    public static let wcNsec = 1080
    public static let wcSecHi = 1084
}

public enum VCPUInfoLayout {
    public static let size = 48
    public static let upcallPending = 0
    public static let upcallMask = 1
    public static let pendingSelector = 8
    /// struct vcpu_time_info: version, pad, tsc_timestamp, system_time, tsc_to_system_mul, tsc_shift, flags.
    public static let timeVersion = 16
    public static let tscTimestamp = 24
    public static let systemTime = 32
    public static let tscToSystemMul = 40
    public static let tscShift = 44
    public static let timeFlags = 45
}

/// struct xencons_interface (xen/include/public/io/console.h).
public enum ConsoleRingLayout {
    public static let input = 0, inputSize = 1024
    public static let output = 1024, outputSize = 2048
    public static let inputConsumer = 3072, inputProducer = 3076
    public static let outputConsumer = 3080, outputProducer = 3084
}

/// struct vcpu_runstate_info: state, then state_entry_time and time[4]; 48 bytes.
public enum RunstateLayout {
    public static let size = 48
    public static let state = 0
    public static let stateEntryTime = 8
    public static let time = 16
    /// XEN_RUNSTATE_UPDATE: set in state_entry_time while the hypervisor rewrites the area, for guests
    /// that enabled VMASST_TYPE_runstate_update_flag and read other vCPUs' areas.
    public static let updateFlag: UInt64 = 1 << 63
}

/// platform_op commands Tern answers (xen/include/public/platform.h), and the interface version the
/// caller must name (XENPF_INTERFACE_VERSION).
public enum PlatformOpCommand: UInt32 { case settime64 = 62 }
public let platformOpInterfaceVersion: UInt32 = 0x0300_0001

/// vm_assist commands, and the one assist Xen offers on Arm.
public enum VMAssistCommand: UInt64 { case enable = 0, disable = 1 }
public let vmAssistRunstateUpdateFlag: UInt64 = 5

/// Where Xen's toolstack puts the pages it provides beside RAM (GUEST_MAGIC_BASE, arch-arm.h), and the
/// console's page within them (xc_dom_arm's CONSOLE_PFN_OFFSET).
public enum MagicPages {
    public static let base = GuestPhysicalAddress(0x3900_0000)
    public static let size: UInt64 = 0x100_0000
    public static let console = base
}
