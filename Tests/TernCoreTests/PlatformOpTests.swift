import Testing
@testable import TernCore

/// platform_op as dom0's Linux sends it when its clock is set, and as a domU or a bad pointer would.
@Suite struct PlatformOpTests {
    private let arg: UInt64 = 0x8000_0000

    private func request(command: UInt32 = 62, version: UInt32 = platformOpInterfaceVersion,
                         nanoseconds: UInt32 = 5, mbz: UInt32 = 0) -> FakeGuestMemory {
        var memory = FakeGuestMemory()
        memory.map(arg)
        var op = XenPlatformOpSettime64()
        op.command = command
        op.interfaceVersion = version
        op.seconds = 1_790_000_000
        op.nanoseconds = nanoseconds
        op.mbz = mbz
        op.systemTime = 42
        _ = memory.write(op, to: VirtualAddress(arg))
        return memory
    }

    private func decode(_ memory: inout FakeGuestMemory, privileged: Bool = true) -> Result<PlatformOp.Request, XenError> {
        PlatformOp.decode(VirtualAddress(arg), &memory, privileged: privileged)
    }

    @Test func settime64IsLaidOutAsPlatformH() {
        #expect(MemoryLayout<XenPlatformOpSettime64>.size == 136)             // sizeof(struct xen_platform_op)
        #expect(MemoryLayout<XenPlatformOpSettime64>.offset(of: \.seconds) == 8)
        #expect(MemoryLayout<XenPlatformOpSettime64>.offset(of: \.mbz) == 20)
        #expect(MemoryLayout<XenPlatformOpSettime64>.offset(of: \.systemTime) == 24)
    }

    @Test func theControlDomainSetsTheClock() {
        var memory = request()
        #expect(decode(&memory) == .success(.settime64(seconds: 1_790_000_000, nanoseconds: 5, systemTime: 42)))
        memory = request(nanoseconds: 2_000_000_007)       // added whole, as Xen's do_settime does
        #expect(decode(&memory) == .success(.settime64(seconds: 1_790_000_000, nanoseconds: 2_000_000_007, systemTime: 42)))
    }

    @Test func everyoneElseAndEveryBadRequestGetsXensCode() {
        var memory = request()
        #expect(decode(&memory, privileged: false) == .failure(.EPERM))
        // Xen's order: a bad pointer or version is said before the privilege.
        var nothing = FakeGuestMemory()
        #expect(decode(&nothing, privileged: false) == .failure(.EFAULT))
        memory = request(version: platformOpInterfaceVersion - 1)
        #expect(decode(&memory, privileged: false) == .failure(.EACCES))
        memory = request(command: 17)                       // XENPF_settime32: not Tern's
        #expect(decode(&memory) == .failure(.ENOSYS))
        // The structure is 136 bytes: one that runs off its page is not there.
        var cut = FakeGuestMemory()
        cut.map(arg)
        var op = XenPlatformOpSettime64()
        (op.command, op.interfaceVersion) = (62, platformOpInterfaceVersion)
        _ = cut.write(op.command, to: VirtualAddress(arg + 4096 - 64))
        _ = cut.write(op.interfaceVersion, to: VirtualAddress(arg + 4096 - 60))
        #expect(PlatformOp.decode(VirtualAddress(arg + 4096 - 64), &cut, privileged: true) == .failure(.EFAULT))
        memory = request(mbz: 1)
        #expect(decode(&memory) == .failure(.EINVAL))
    }
}
