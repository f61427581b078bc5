// Xen's hypercalls from the guest side. Results are Xen's: >= 0 success, negative errno otherwise.
import GuestKitAsm
import TernCore

/// A hypercall's negative result, as Xen's errno.
public struct XenCallError: Error {
    public let code: Int64
}

public enum Xen {
    @discardableResult
    public static func call(_ number: UInt64, _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0,
                            _ a3: UInt64 = 0, _ a4: UInt64 = 0) -> Int64 {
        guest_hypercall(a0, a1, a2, a3, a4, number)
    }

    @discardableResult
    public static func call(_ h: Hypercall, _ a0: UInt64 = 0, _ a1: UInt64 = 0, _ a2: UInt64 = 0) -> Int64 {
        guest_hypercall(a0, a1, a2, 0, 0, h.rawValue)
    }

    /// A hypercall whose argument is a structure in our memory, which the hypervisor reads and may fill
    /// in; `count` is the third argument of those that take a batch (grant_table_op).
    @discardableResult
    public static func call<T>(_ h: Hypercall, _ command: UInt64, pointingTo argument: inout T, count: UInt64 = 0) -> Int64 {
        withUnsafeMutablePointer(to: &argument) { call(h, command, UInt64(UInt(bitPattern: $0)), count) }
    }

    /// (major, minor) of the hypervisor's Xen ABI.
    public static var version: (Int, Int) {
        let v = call(.xen_version, XenVersionCommand.version.rawValue)
        return (Int(v >> 16), Int(v & 0xFFFF))
    }

    public static var extraVersion: [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 16)
        let r = buffer.withUnsafeMutableBytes { b in
            call(.xen_version, XenVersionCommand.extraversion.rawValue, UInt64(UInt(bitPattern: b.baseAddress!)))
        }
        guard r == 0 else { return [] }
        return Array(buffer.prefix { $0 != 0 })
    }

    public static func yield() {
        call(.sched_op, SchedOpCommand.yield.rawValue)
    }

    /// Sleeps until an interrupt is pending (SCHEDOP_block).
    public static func block() {
        call(.sched_op, SchedOpCommand.block.rawValue)
    }

    /// SCHEDOP_poll on no ports: sleeps until `deadline`, Xen system time in ns. Without shared_info's
    /// time base a guest of ours takes the counter since machine start as its estimate of system time.
    @discardableResult
    public static func poll(until deadline: UInt64) -> Int64 {
        // struct sched_poll { evtchn_port_t *ports; unsigned int nr_ports; uint64_t timeout; }
        var request: (UInt64, UInt64, UInt64) = (0, 0, deadline)
        return call(.sched_op, SchedOpCommand.poll.rawValue, pointingTo: &request)
    }

    /// How long the hypervisor says this vCPU has run (VCPUOP_get_runstate_info's time[running], which
    /// Xen and Tern count up to the moment of the call), in ns: what the scheduler gave it, whatever
    /// the host made of that time. nil if the call fails.
    public static func ranNanoseconds(vcpu: UInt64 = 0) -> UInt64? {
        var info = VCPURunstateInfo()
        let r = withUnsafeMutablePointer(to: &info) {
            call(.vcpu_op, VCPUOpCommand.get_runstate_info.rawValue, vcpu, UInt64(UInt(bitPattern: $0)))
        }
        return r == 0 ? info.time.0 : nil
    }

    /// Places shared_info in a zeroed page of our own (XENMEM_add_to_physmap, XENMAPSPACE_shared_info)
    /// and returns its address, or the error.
    public static func mapSharedInfo() -> Result<UInt64, XenCallError> {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        let base = UInt64(UInt(bitPattern: page))
        for i in 0 ..< 512 { guest_store64(base + UInt64(i) * 8, 0) }
        // xen_add_to_physmap { domid, size, space = shared_info } { idx 0 } { gpfn }
        var map: (UInt64, UInt64, UInt64) = (UInt64(domidSelf), 0, base >> 12)
        let r = call(.memory_op, MemoryOpCommand.add_to_physmap.rawValue, pointingTo: &map)
        return r == 0 ? .success(base) : .failure(XenCallError(code: r))
    }

    /// shared_info's wall clock (wc_sec_hi:wc_sec, wc_nsec), read under its version protocol: the
    /// time of day at which this domain's clock read zero.
    public static func wallClock(sharedInfo s: UInt64) -> (seconds: UInt64, nanoseconds: UInt32, version: UInt32) {
        while true {
            let version = guest_load32(s + UInt64(SharedInfoLayout.wcVersion))
            guest_barrier()
            let seconds = UInt64(guest_load32(s + UInt64(SharedInfoLayout.wcSecHi))) << 32
                | UInt64(guest_load32(s + UInt64(SharedInfoLayout.wcSec)))
            let nanoseconds = guest_load32(s + UInt64(SharedInfoLayout.wcNsec))
            guest_barrier()
            if version & 1 == 0 && guest_load32(s + UInt64(SharedInfoLayout.wcVersion)) == version {
                return (seconds, nanoseconds, version)
            }
        }
    }

    public static func shutdown(_ reason: ShutdownReason) -> Never {
        var r = reason.rawValue
        call(.sched_op, SchedOpCommand.shutdown.rawValue, pointingTo: &r)
        while true { guest_wfi() }
    }
}
