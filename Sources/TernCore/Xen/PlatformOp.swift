// platform_op's argument (xen/include/public/platform.h), read and checked: only the control domain
// may ask, at this interface version, and of its commands Tern has the clock (XENPF_settime64).

/// struct xen_platform_op as far as XENPF_settime64 reads it: cmd, interface_version, then the union's
/// struct xenpf_settime64 { uint64_t secs; uint32_t nsecs; uint32_t mbz; uint64_t system_time; }.
public struct XenPlatformOpSettime64 {
    public var command: UInt32 = 0
    public var interfaceVersion: UInt32 = 0
    public var seconds: UInt64 = 0
    public var nanoseconds: UInt32 = 0
    public var mbz: UInt32 = 0
    public var systemTime: UInt64 = 0
    public init() {}
}

public enum PlatformOp {
    public enum Request: Equatable {
        /// The wall clock read `seconds`.`nanoseconds` (below a second) when the caller's monotonic
        /// clock read `systemTime`.
        case settime64(seconds: UInt64, nanoseconds: UInt32, systemTime: UInt64)
    }

    public static func decode<Memory: GuestMemoryAccess>(
        _ arg: VirtualAddress, _ memory: inout Memory, privileged: Bool
    ) -> Result<Request, XenError> {
        guard privileged else { return .failure(.EPERM) }
        var op = XenPlatformOpSettime64()
        guard memory.read(&op, from: arg) else { return .failure(.EFAULT) }
        guard op.interfaceVersion == platformOpInterfaceVersion else { return .failure(.EACCES) }
        switch op.command {
        case PlatformOpCommand.settime64.rawValue:
            guard op.mbz == 0 else { return .failure(.EINVAL) }
            return .success(.settime64(seconds: op.seconds, nanoseconds: op.nanoseconds % 1_000_000_000,
                                       systemTime: op.systemTime))
        default:
            return .failure(.ENOSYS)
        }
    }
}
