// platform_op's argument (xen/include/public/platform.h), read and checked: only the control domain
// may ask, at this interface version, and of its commands Tern has the clock (XENPF_settime64).

/// struct xen_platform_op with XENPF_settime64 in its union: cmd, interface_version, then struct
/// xenpf_settime64 { uint64_t secs; uint32_t nsecs; uint32_t mbz; uint64_t system_time; } and the rest
/// of the 128-byte union. Read whole, as Xen copies it: a structure cut short by an unmapped page is
/// -EFAULT whatever the command.
public struct XenPlatformOpSettime64 {
    public var command: UInt32 = 0
    public var interfaceVersion: UInt32 = 0
    public var seconds: UInt64 = 0
    public var nanoseconds: UInt32 = 0
    public var mbz: UInt32 = 0
    public var systemTime: UInt64 = 0
    var restOfUnion: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    public init() {}
}

public enum PlatformOp {
    public enum Request: Equatable {
        /// The wall clock read `seconds` s + `nanoseconds` ns (which may pass a second, as Xen adds
        /// them) when the caller's monotonic clock read `systemTime`.
        case settime64(seconds: UInt64, nanoseconds: UInt32, systemTime: UInt64)
    }

    public static func decode<Memory: GuestMemoryAccess>(
        _ arg: VirtualAddress, _ memory: inout Memory, privileged: Bool
    ) -> Result<Request, XenError> {
        // Xen's order: the copy, the version, then the caller's privilege (its dummy XSM policy).
        var op = XenPlatformOpSettime64()
        guard memory.read(&op, from: arg) else { return .failure(.EFAULT) }
        guard op.interfaceVersion == platformOpInterfaceVersion else { return .failure(.EACCES) }
        guard privileged else { return .failure(.EPERM) }
        switch op.command {
        case PlatformOpCommand.settime64.rawValue:
            guard op.mbz == 0 else { return .failure(.EINVAL) }
            return .success(.settime64(seconds: op.seconds, nanoseconds: op.nanoseconds, systemTime: op.systemTime))
        default:
            return .failure(.ENOSYS)
        }
    }
}
