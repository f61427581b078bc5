import Testing
@testable import TernCore

/// grant_table_op against a fake host and guest memory: the structures' layouts, the checks made before
/// the host is asked, statuses written back, batches and their continuation, and bad pointers.
@Suite struct GrantTableOpTests {
    let host = FakeGrantHost()
    var memory = FakeGuestMemory()
    static let arg: UInt64 = 0x10000

    init() {
        for page in 0 ..< 4 { memory.map(Self.arg + UInt64(page) * 0x1000) }
    }

    mutating func op(_ command: GrantTableOpCommand, count: UInt64 = 1, at arg: UInt64 = arg) -> GrantTableOp.Outcome {
        GrantTableOp.handle(command.rawValue, VirtualAddress(arg), count, &memory, host)
    }

    mutating func put<T>(_ value: T, at arg: UInt64 = arg) { _ = memory.write(value, to: VirtualAddress(arg)) }

    mutating func get<T>(_ type: T.Type, at arg: UInt64 = arg, zero: T) -> T {
        var v = zero
        _ = memory.read(&v, from: VirtualAddress(arg))
        return v
    }

    @Test func structuresHaveTheHeadersLayout() {
        #expect(MemoryLayout<GnttabMapGrantRef>.size == 32)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.flags) == 8)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.ref) == 12)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.dom) == 16)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.status) == 18)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.handle) == 20)
        #expect(MemoryLayout<GnttabMapGrantRef>.offset(of: \.busAddress) == 24)
        #expect(MemoryLayout<GnttabUnmapGrantRef>.size == 24)
        #expect(MemoryLayout<GnttabUnmapGrantRef>.offset(of: \.handle) == 16)
        #expect(MemoryLayout<GnttabUnmapGrantRef>.offset(of: \.status) == 20)
        #expect(MemoryLayout<GnttabCopy>.size == 40)
        #expect(MemoryLayout<GnttabCopy>.offset(of: \.destination) == 16)
        #expect(MemoryLayout<GnttabCopyPointer>.offset(of: \.domid) == 8)
        #expect(MemoryLayout<GnttabCopyPointer>.offset(of: \.offset) == 10)
        #expect(MemoryLayout<GnttabCopy>.offset(of: \.length) == 32)
        #expect(MemoryLayout<GnttabCopy>.offset(of: \.flags) == 34)
        #expect(MemoryLayout<GnttabCopy>.offset(of: \.status) == 36)
        #expect(MemoryLayout<GnttabCacheFlush>.size == 16)
        #expect(MemoryLayout<GnttabCacheFlush>.offset(of: \.op) == 12)
        #expect(MemoryLayout<GnttabQuerySize>.size == 16)
        #expect(MemoryLayout<GnttabQuerySize>.offset(of: \.frames) == 4)
        #expect(MemoryLayout<GnttabQuerySize>.offset(of: \.status) == 12)
    }

    @Test mutating func aMapIsCheckedThenAskedForAndAnswered() {
        var m = GnttabMapGrantRef()
        (m.hostAddress, m.flags, m.ref, m.dom) = (0x3800_1000, GrantMapFlags.hostMap | GrantMapFlags.readOnly, 9, domidSelf)
        put(m)
        #expect(op(.map_grant_ref) == .done(0))
        #expect(host.maps.count == 1)
        #expect(host.maps[0].ref == 9 && host.maps[0].granter == DomainID(3) && host.maps[0].readOnly && !host.maps[0].device)
        let answered = get(GnttabMapGrantRef.self, zero: GnttabMapGrantRef())
        #expect(answered.status == 0 && answered.handle == 7 && answered.busAddress == 0)
        #expect(answered.ref == 9 && answered.hostAddress == 0x3800_1000)          // the rest as the guest wrote it
    }

    @Test mutating func mapsTheHostNeverSeesGetTheirStatus() {
        var m = GnttabMapGrantRef()
        (m.hostAddress, m.flags, m.dom) = (0x3800_1000, 0, 1)                      // no GNTMAP_host_map
        put(m)
        #expect(op(.map_grant_ref) == .done(0))
        #expect(get(GnttabMapGrantRef.self, zero: m).status == GrantStatus.generalError.rawValue)
        m.flags = GrantMapFlags.hostMap | GrantMapFlags.containsPTE
        put(m)
        _ = op(.map_grant_ref)
        #expect(get(GnttabMapGrantRef.self, zero: m).status == GrantStatus.generalError.rawValue)
        for address: UInt64 in [0x3800_1004, 1 << 39] {
            (m.flags, m.hostAddress) = (GrantMapFlags.hostMap, address)
            put(m)
            _ = op(.map_grant_ref)
            let answered = get(GnttabMapGrantRef.self, zero: m)
            #expect(answered.status == GrantStatus.badVirtualAddress.rawValue)
            #expect(answered.handle == UInt32(bitPattern: -5))
        }
        #expect(host.maps.isEmpty)
        host.mapAnswer = .failure(GrantStatusError(.badGrantRef))
        m.hostAddress = 0x3800_2000
        put(m)
        _ = op(.map_grant_ref)
        #expect(get(GnttabMapGrantRef.self, zero: m).status == GrantStatus.badGrantRef.rawValue)
    }

    @Test mutating func unmapAndItsStatus() {
        var u = GnttabUnmapGrantRef()
        (u.hostAddress, u.handle) = (0x3800_1000, 4)
        put(u)
        host.unmapAnswer = .badHandle
        #expect(op(.unmap_grant_ref) == .done(0))
        #expect(host.unmaps.count == 1 && host.unmaps[0] == (4, 0x3800_1000))
        #expect(get(GnttabUnmapGrantRef.self, zero: u).status == GrantStatus.badHandle.rawValue)
    }

    @Test mutating func copiesStayInsideTheirPagesAndFramesAreTheCallersOwn() {
        var c = GnttabCopy()
        c.source = GnttabCopyPointer(frame: 12, domid: 1, offset: 0)
        c.destination = GnttabCopyPointer(frame: 0x40000, domid: domidSelf, offset: 100)
        (c.length, c.flags) = (16, GrantCopyFlags.sourceGrant)
        put(c)
        #expect(op(.copy) == .done(0))
        #expect(host.copies.count == 1)
        #expect(host.copies[0].0 == GrantCopyPointer(grant: true, frameOrRef: 12, domain: 1, offset: 0))
        #expect(host.copies[0].1 == GrantCopyPointer(grant: false, frameOrRef: 0x40000, domain: domidSelf, offset: 100))
        #expect(get(GnttabCopy.self, zero: c).status == 0)
        c.destination.offset = 4090                                   // 16 bytes from 4090 leave the page
        put(c)
        _ = op(.copy)
        #expect(get(GnttabCopy.self, zero: c).status == GrantStatus.badCopyArgument.rawValue)
        c.destination = GnttabCopyPointer(frame: 0x40000, domid: 1, offset: 0)      // a frame of domain 1
        put(c)
        _ = op(.copy)
        #expect(get(GnttabCopy.self, zero: c).status == GrantStatus.permissionDenied.rawValue)
        c.destination.domid = 3                                        // even the caller's own id: Xen wants DOMID_SELF
        put(c)
        _ = op(.copy)
        #expect(get(GnttabCopy.self, zero: c).status == GrantStatus.permissionDenied.rawValue)
        c.destination.domid = domidSelf
        put(c)
        _ = op(.copy)
        #expect(host.copies.count == 2)
    }

    @Test mutating func cacheFlushChecksItsRangeAndOperation() {
        func flush(_ address: UInt64, _ offset: UInt16, _ length: UInt16, _ what: UInt32, into t: inout GrantTableOpTests) -> GrantTableOp.Outcome {
            var f = GnttabCacheFlush()
            (f.address, f.offset, f.length, f.op) = (address, offset, length, what)
            t.put(f)
            return t.op(.cache_flush)
        }
        var me = self
        #expect(flush(0x4800_1234, 64, 128, GrantCacheOp.invalidate, into: &me) == .done(0))
        #expect(host.flushes.count == 1 && host.flushes[0].0 == HostPhysicalAddress(0x4800_1000))
        #expect(host.flushes[0].1 == 64 && host.flushes[0].2 == 128 && host.flushes[0].3)
        #expect(flush(0x4800_1000, 4000, 128, GrantCacheOp.clean, into: &me) == .done(XenError.EINVAL.returnValue))
        #expect(flush(0x4800_1000, 0, 16, 1 << 5, into: &me) == .done(XenError.EINVAL.returnValue))
        #expect(flush(0x4800_1000, 0, 16, GrantCacheOp.sourceGrant, into: &me) == .done(XenError.EOPNOTSUPP.returnValue))
        #expect(flush(0x4800_1000, 0, 0, GrantCacheOp.clean, into: &me) == .done(0))      // nothing to do
        host.flushAnswer = XenError.EPERM.returnValue
        #expect(flush(0x4900_0000, 0, 16, GrantCacheOp.clean, into: &me) == .done(XenError.EPERM.returnValue))
        #expect(host.flushes.count == 2)
    }

    /// A flush of a frame the caller maps looks through every mapping it has (up to 262,144), so a
    /// batch of them does one a call and continues with the rest.
    @Test mutating func cacheFlushesGoOneACall() {
        var f = GnttabCacheFlush()
        for i in 0 ..< 3 {
            (f.address, f.offset, f.length, f.op) = (0x4800_0000 + UInt64(i) * 0x1000, 0, 64, GrantCacheOp.clean)
            put(f, at: Self.arg + UInt64(i) * UInt64(MemoryLayout<GnttabCacheFlush>.stride))
        }
        let size = UInt64(MemoryLayout<GnttabCacheFlush>.stride)
        #expect(op(.cache_flush, count: 3) == .continues(arg: VirtualAddress(Self.arg + size), count: 2))
        #expect(op(.cache_flush, count: 2, at: Self.arg + size) == .continues(arg: VirtualAddress(Self.arg + 2 * size), count: 1))
        #expect(op(.cache_flush, count: 1, at: Self.arg + 2 * size) == .done(0))
        #expect(host.flushes.map(\.0) == [0x4800_0000, 0x4800_1000, 0x4800_2000].map { HostPhysicalAddress($0) })
    }

    @Test mutating func aLongBatchContinuesAndAnUnreadableOneStops() {
        var u = GnttabUnmapGrantRef()
        for i in 0 ..< 100 {
            u.handle = UInt32(i)
            put(u, at: Self.arg + UInt64(i) * 24)
        }
        #expect(op(.unmap_grant_ref, count: 100) == .continues(arg: VirtualAddress(Self.arg + 64 * 24), count: 36))
        #expect(host.unmaps.count == 64)
        #expect(op(.unmap_grant_ref, count: 36, at: Self.arg + 64 * 24) == .done(0))
        #expect(host.unmaps.map(\.handle) == (0 ..< 100).map { UInt32($0) })
        // Xen's count is an unsigned int refused when negative as an int; a zero count does nothing.
        #expect(op(.unmap_grant_ref, count: 0x8000_0000) == .done(XenError.EINVAL.returnValue))
        #expect(op(.unmap_grant_ref, count: 0xFFFF_FFFF_0000_0000) == .done(0))
        // The batch runs off the mapped pages: the ones before are done, then EFAULT.
        let last = Self.arg + 4 * 0x1000 - 48
        #expect(op(.unmap_grant_ref, count: 3, at: last) == .done(XenError.EFAULT.returnValue))
        #expect(host.unmaps.count == 102)
    }

    @Test mutating func theTablesShapeIsTheCallersOwn() {
        var q = GnttabQuerySize()
        q.dom = domidSelf
        put(q)
        host.placedFrames = 4
        #expect(op(.query_size) == .done(0))
        let answered = get(GnttabQuerySize.self, zero: q)
        #expect(answered.frames == 4 && answered.maximumFrames == 32 && answered.status == 0)
        q.dom = 1
        put(q)
        #expect(op(.query_size) == .done(0))
        #expect(get(GnttabQuerySize.self, zero: q).status == GrantStatus.badDomain.rawValue)
        #expect(op(.query_size, count: 2) == .done(XenError.EINVAL.returnValue))
        put(UInt32(2))
        #expect(op(.set_version) == .done(XenError.EINVAL.returnValue))
        put(UInt32(1))
        #expect(op(.set_version) == .done(0))
        put(UInt32(3))                                                // get_version of domain 3: the caller
        #expect(op(.get_version) == .done(0))
        #expect(get(UInt32.self, at: Self.arg + 4, zero: 0) == 1)
        put(UInt32(1))
        #expect(op(.get_version) == .done(XenError.EPERM.returnValue))
        #expect(GrantTableOp.handle(GrantTableOpCommand.transfer.rawValue, VirtualAddress(Self.arg), 1, &memory, host)
                == .done(XenError.ENOSYS.returnValue))
        #expect(op(.query_size, at: 0x90000) == .done(XenError.EFAULT.returnValue))
    }
}
