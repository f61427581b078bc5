// grant_table_op: the grant table's shape (query_size, set_version, get_version) and batches of maps,
// unmaps, copies and cache flushes, decided here behind the seam and host-tested. Each operation's
// structure is read whole, checked, handed to the GrantTableHost (which holds the domains and their
// memory), and its status written back, as Xen does; a long batch is cut into calls of a bounded
// number of operations (Xen's continuation), so no guest holds its CPU at EL2 for long.

/// What grant_table_op needs from the hypervisor, for one calling domain.
public protocol GrantTableHost {
    var caller: DomainID { get }
    /// Grant frames the caller has placed in its address space (GNTTABOP_query_size's nr_frames).
    var placedFrames: Int { get }
    /// Maps grant `ref` of `granter` at `address` of the caller's own address space (page aligned,
    /// inside its IPA space). The handle, and the frame's bus address when one is due.
    func map(_ ref: GrantRef, of granter: DomainID, at address: GuestPhysicalAddress, readOnly: Bool,
             device: Bool) -> Result<(handle: UInt32, busAddress: UInt64), GrantStatusError>
    /// Unmaps the mapping `handle` (at `address`, when not 0).
    func unmap(handle: UInt32, at address: UInt64) -> GrantStatus
    /// Copies `length` bytes between two frames, each a grant or one of the caller's own (offsets
    /// and length already checked to stay inside a page).
    func copy(from source: GrantCopyPointer, to destination: GrantCopyPointer, length: UInt64) -> GrantStatus
    /// Cleans and/or invalidates [address + offset, + length) of a frame the caller owns or maps.
    func flush(frame: HostPhysicalAddress, offset: UInt64, length: UInt64, invalidate: Bool) -> UInt64
}

/// One side of gnttab_copy, with which kind it is.
public struct GrantCopyPointer: Equatable, Sendable {
    /// A grant reference of `domain`, or (not a grant) a frame number of the caller's.
    public var grant: Bool
    public var ref: GrantRef { GrantRef(UInt32(truncatingIfNeeded: frameOrRef)) }
    public var frameOrRef: UInt64
    public var domain: UInt16
    public var offset: UInt64

    public init(grant: Bool, frameOrRef: UInt64, domain: UInt16, offset: UInt64) {
        self.grant = grant
        self.frameOrRef = frameOrRef
        self.domain = domain
        self.offset = offset
    }
}

public enum GrantTableOp {
    /// The most operations one call does before it continues (Xen's preemption check, made a count).
    public static let operationsPerCall: UInt64 = 64
    /// A flush of a frame not the caller's own looks at each of its mappings (up to 262,144), under
    /// its grants lock: one such look a call, then the call continues (Linux asks one at a time).
    public static let flushesPerCall: UInt64 = 1
    /// The grant frames a domain may have (each holds 512 v1 entries): max_nr_frames.
    public static let maximumFrames = 32

    /// What the hypervisor does with the call.
    public enum Outcome: Equatable, Sendable {
        /// Return this in x0.
        case done(UInt64)
        /// Make the call again with `arg` and `count` in x1 and x2: the rest of the batch.
        case continues(arg: VirtualAddress, count: UInt64)
    }

    public static func handle<Memory: GuestMemoryAccess, Host: GrantTableHost>(
        _ command: UInt64, _ arg: VirtualAddress, _ count: UInt64, _ memory: inout Memory, _ host: Host) -> Outcome {
        switch GrantTableOpCommand(rawValue: command) {
        case .query_size:
            guard count == 1 else { return .done(XenError.EINVAL.returnValue) }
            var q = GnttabQuerySize()
            guard memory.read(&q, from: arg) else { return .done(XenError.EFAULT.returnValue) }
            if namesCaller(q.dom, host.caller) {
                (q.frames, q.maximumFrames, q.status) = (UInt32(max(host.placedFrames, 1)), UInt32(maximumFrames),
                                                          GrantStatus.okay.rawValue)
            } else {
                q.status = GrantStatus.badDomain.rawValue
            }
            return .done(memory.write(q, to: arg) ? 0 : XenError.EFAULT.returnValue)
        case .set_version:
            // struct gnttab_set_version { uint32_t version; }: Tern has the v1 layout only.
            guard count == 1 else { return .done(XenError.EINVAL.returnValue) }
            guard let version = memory.load32(arg) else { return .done(XenError.EFAULT.returnValue) }
            return .done(version == 1 ? 0 : XenError.EINVAL.returnValue)
        case .get_version:
            // struct gnttab_get_version { domid_t dom; uint32_t version; }
            guard count == 1 else { return .done(XenError.EINVAL.returnValue) }
            guard let dom = memory.load32(arg) else { return .done(XenError.EFAULT.returnValue) }
            guard namesCaller(UInt16(truncatingIfNeeded: dom), host.caller) else { return .done(XenError.EPERM.returnValue) }
            return .done(memory.store32(arg + 4, 1) ? 0 : XenError.EFAULT.returnValue)
        case .map_grant_ref:
            return batch(count, of: GnttabMapGrantRef.self, at: arg, &memory) { map(&$0, host) }
        case .unmap_grant_ref:
            return batch(count, of: GnttabUnmapGrantRef.self, at: arg, &memory) { unmap(&$0, host) }
        case .copy:
            return batch(count, of: GnttabCopy.self, at: arg, &memory) { copy(&$0, host) }
        case .cache_flush:
            // The first failing flush's result is the call's, and nothing is written back.
            var failed: UInt64 = 0
            let outcome = batch(count, of: GnttabCacheFlush.self, at: arg, &memory, writeBack: false,
                                perCall: flushesPerCall) { (f: inout GnttabCacheFlush) in
                failed = flush(f, host)
                return failed == 0
            }
            if failed != 0 { return .done(failed) }
            return outcome
        default:
            return .done(XenError.ENOSYS.returnValue)
        }
    }


    /// Runs `op` on each of `count` structures at `arg` (read whole, written back with its status)
    /// until one cannot be read or written (EFAULT) or `op` says stop; at most `perCall` of
    /// them before the call continues with the rest.
    static func batch<Memory: GuestMemoryAccess, Op: GrantOperationStructure>(_ count: UInt64, of type: Op.Type, at arg: VirtualAddress,
                                                     _ memory: inout Memory, writeBack: Bool = true,
                                                     perCall: UInt64 = operationsPerCall,
                                                     _ op: (inout Op) -> Bool) -> Outcome {
        // Xen takes the count as an unsigned int and refuses one that is negative as an int.
        let count = UInt64(UInt32(truncatingIfNeeded: count))
        guard count <= UInt64(Int32.max) else { return .done(XenError.EINVAL.returnValue) }
        let size = UInt64(MemoryLayout<Op>.stride)
        let now = min(count, perCall)
        for i in 0 ..< now {
            let at = arg + i * size
            var request = Op()
            guard memory.read(&request, from: at) else { return .done(XenError.EFAULT.returnValue) }
            let goOn = op(&request)
            if writeBack && !memory.write(request, to: at) { return .done(XenError.EFAULT.returnValue) }
            if !goOn { return .done(0) }
        }
        return count > now ? .continues(arg: arg + now * size, count: count - now) : .done(0)
    }
}

extension GrantTableOp {
    static func map<Host: GrantTableHost>(_ m: inout GnttabMapGrantRef, _ host: Host) -> Bool {
        var status = GrantStatus.okay
        var handle: UInt32 = 0, busAddress: UInt64 = 0
        if m.flags & GrantMapFlags.hostMap == 0 || m.flags & GrantMapFlags.containsPTE != 0 {
            status = .generalError              // Arm maps into the guest's physical space only
        } else if m.hostAddress & 0xFFF != 0 || m.hostAddress >= 1 << 39 {
            status = .badVirtualAddress
        } else {
            let granter = m.dom == domidSelf ? host.caller : DomainID(m.dom)
            switch host.map(m.ref, of: granter, at: GuestPhysicalAddress(m.hostAddress),
                            readOnly: m.flags & GrantMapFlags.readOnly != 0, device: m.flags & GrantMapFlags.deviceMap != 0) {
            case .success(let mapped): (handle, busAddress) = mapped
            case .failure(let refused): status = refused.status
            }
        }
        m.status = status.rawValue
        m.handle = status == .okay ? handle : UInt32(bitPattern: Int32(status.rawValue))
        m.busAddress = busAddress
        return true
    }

    static func unmap<Host: GrantTableHost>(_ u: inout GnttabUnmapGrantRef, _ host: Host) -> Bool {
        u.status = host.unmap(handle: u.handle, at: u.hostAddress).rawValue
        return true
    }

    static func copy<Host: GrantTableHost>(_ c: inout GnttabCopy, _ host: Host) -> Bool {
        let length = UInt64(c.length)
        let source = GrantCopyPointer(grant: c.flags & GrantCopyFlags.sourceGrant != 0, frameOrRef: c.source.frame,
                                      domain: c.source.domid, offset: UInt64(c.source.offset))
        let destination = GrantCopyPointer(grant: c.flags & GrantCopyFlags.destinationGrant != 0, frameOrRef: c.destination.frame,
                                           domain: c.destination.domid, offset: UInt64(c.destination.offset))
        let status: GrantStatus
        if source.offset + length > pageSize || destination.offset + length > pageSize {
            status = .badCopyArgument
        } else if (!source.grant && source.domain != domidSelf) || (!destination.grant && destination.domain != domidSelf) {
            status = .permissionDenied          // a frame, not a grant, is named by DOMID_SELF only, as in Xen
        } else {
            status = host.copy(from: source, to: destination, length: length)
        }
        c.status = status.rawValue
        return true
    }

    /// GNTTABOP_cache_flush: cache maintenance for a guest that does DMA (Linux's dom0 on Arm probes it
    /// at boot and uses it for foreign pages). An invalidate also cleans (host's to do).
    static func flush<Host: GrantTableHost>(_ f: GnttabCacheFlush, _ host: Host) -> UInt64 {
        let offset = UInt64(f.offset), length = UInt64(f.length)
        guard offset < pageSize, offset + length <= pageSize,
              f.op & ~(GrantCacheOp.clean | GrantCacheOp.invalidate | GrantCacheOp.sourceGrant) == 0 else {
            return XenError.EINVAL.returnValue
        }
        if length == 0 || f.op == 0 { return 0 }
        guard f.op & GrantCacheOp.sourceGrant == 0 else { return XenError.EOPNOTSUPP.returnValue }   // as Xen: not done
        return host.flush(frame: HostPhysicalAddress(f.address & ~(pageSize - 1)), offset: offset, length: length,
                          invalidate: f.op & GrantCacheOp.invalidate != 0)
    }
}

// Xen's structures (public/grant_table.h), in its field order with all of C's padding made explicit, so
// each type's size is C's sizeof and no byte written back is left to chance; GrantTableOpTests checks
// sizes and offsets against the header.

/// What a batch reads: a structure that starts as zeros.
public protocol GrantOperationStructure { init() }

public struct GnttabMapGrantRef: GrantOperationStructure, Equatable {
    public var hostAddress: UInt64 = 0
    public var flags: UInt32 = 0
    public var ref: GrantRef = 0
    public var dom: UInt16 = 0
    public var status: Int16 = 0
    public var handle: UInt32 = 0
    public var busAddress: UInt64 = 0
    public init() {}
}

public struct GnttabUnmapGrantRef: GrantOperationStructure, Equatable {
    public var hostAddress: UInt64 = 0
    public var busAddress: UInt64 = 0
    public var handle: UInt32 = 0
    public var status: Int16 = 0
    var padding: UInt16 = 0
    public init() {}
}

public struct GnttabCopyPointer: Equatable, Sendable {
    /// A grant reference, or (not a grant) a guest frame number.
    public var frame: UInt64 = 0
    public var domid: UInt16 = 0
    public var offset: UInt16 = 0
    var padding: UInt32 = 0
    public init(frame: UInt64 = 0, domid: UInt16 = 0, offset: UInt16 = 0) {
        (self.frame, self.domid, self.offset) = (frame, domid, offset)
    }
}

public struct GnttabCopy: GrantOperationStructure, Equatable {
    public var source = GnttabCopyPointer()
    public var destination = GnttabCopyPointer()
    public var length: UInt16 = 0
    public var flags: UInt16 = 0
    public var status: Int16 = 0
    var padding: UInt16 = 0
    public init() {}
}

public struct GnttabCacheFlush: GrantOperationStructure, Equatable {
    /// dev_bus_addr (or, with GNTTAB_CACHE_SOURCE_GREF, a grant reference).
    public var address: UInt64 = 0
    public var offset: UInt16 = 0
    public var length: UInt16 = 0
    public var op: UInt32 = 0
    public init() {}
}

public struct GnttabQuerySize: Equatable {
    public var dom: UInt16 = 0
    var padding0: UInt16 = 0
    public var frames: UInt32 = 0
    public var maximumFrames: UInt32 = 0
    public var status: Int16 = 0
    var padding: UInt16 = 0
    public init() {}
}
