// domctl (xen/include/public/domctl.h at XEN_DOMCTL_INTERFACE_VERSION 0x15): the control domain acting
// on one domain. Xen 4.17's order: the copy (-EFAULT), the interface version (-EACCES), the domain
// (-ESRCH), then the caller's privilege (-EPERM); a command Tern does not have is -ENOSYS.
// getdomaininfo keeps 4.17's meaning, which libxc's xc_domain_getinfo relies on: the first domain
// whose ID is the one asked for or above (Xen 4.18 made it exact).

public let domctlInterfaceVersion: UInt32 = 0x15

public enum DomctlCommand: UInt32 {
    case destroydomain = 2, pausedomain = 3, unpausedomain = 4, getdomaininfo = 5
}

/// struct xen_domctl: cmd, interface_version, domain, padding, and a 128-byte union (8-byte aligned).
public struct XenDomctl {
    public var command: UInt32 = 0
    public var interfaceVersion: UInt32 = 0
    public var domain: UInt16 = 0
    var pad: (UInt16, UInt16, UInt16) = (0, 0, 0)
    var union: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    public init() {}

    public func payload<T>(as: T.Type) -> T {
        precondition(MemoryLayout<T>.size <= 128)
        return withUnsafeBytes(of: union) { $0.loadUnaligned(as: T.self) }
    }

    public mutating func setPayload<T>(_ value: T) {
        precondition(MemoryLayout<T>.size <= 128)
        withUnsafeMutableBytes(of: &union) { $0.storeBytes(of: value, as: T.self) }
    }
}

public enum Domctl {
    public static func perform<Memory: GuestMemoryAccess, Host: ToolstackHost>(
        _ arg: VirtualAddress, _ memory: inout Memory, caller: DomainID, privileged: Bool, _ host: Host
    ) -> XenError? {
        var op = XenDomctl()
        guard memory.read(&op, from: arg) else { return .EFAULT }
        guard op.interfaceVersion == domctlInterfaceVersion else { return .EACCES }
        switch DomctlCommand(rawValue: op.command) {
        case .getdomaininfo:
            guard let d = host.domains(from: DomainID(op.domain), limit: 1).first else { return .ESRCH }
            guard privileged else { return .EPERM }
            op.setPayload(XenDomainInfo(d))
            op.domain = d.id.raw
        case .destroydomain:
            let id = DomainID(op.domain)
            guard host.domains(from: id, limit: 1).first?.id == id else { return .ESRCH }
            guard privileged else { return .EPERM }
            // Tern's own rule: the control domain ends itself through SCHEDOP_shutdown.
            guard id != caller else { return .EINVAL }
            return host.destroy(id)
        case .pausedomain, .unpausedomain:
            let id = DomainID(op.domain)
            guard host.domains(from: id, limit: 1).first?.id == id else { return .ESRCH }
            guard privileged else { return .EPERM }
            // Nothing to copy back: Xen answers these in the return value alone.
            if op.command == DomctlCommand.pausedomain.rawValue {
                guard id != caller else { return .EINVAL }          // a domain may not pause itself
                return host.pause(id)
            }
            return host.unpause(id)
        case nil:
            guard privileged else { return .EPERM }
            return .ENOSYS
        }
        guard memory.write(op, to: arg) else { return .EFAULT }
        return nil
    }
}
