// Event channels from the guest side, by the 2-level ABI: shared_info and each vCPU's vcpu_info in pages
// of our own, ports bound to vCPUs, and the upcall (PPI 31) that hands each pending, unmasked port to
// `Events.handler`.
import GuestKitAsm
import TernCore

public enum Events {
    nonisolated(unsafe) public private(set) static var sharedInfo: UInt64 = 0
    /// Each vCPU's vcpu_info, by index (registered by the vCPU itself).
    nonisolated(unsafe) static var vcpuInfos: UnsafeMutablePointer<UInt64>!
    /// Called from the upcall for every port it finds pending and unmasked (after clearing it).
    nonisolated(unsafe) public static var handler: ((UInt32) -> Void)?

    /// Maps shared_info; call once, on vCPU 0, before the other vCPUs start.
    public static func start() -> Int64 {
        vcpuInfos = .allocate(capacity: 8)
        vcpuInfos.initialize(repeating: 0, count: 8)
        switch Xen.mapSharedInfo() {
        case .success(let base):
            sharedInfo = base
            return 0
        case .failure(let e):
            return e.code
        }
    }

    /// Registers the calling vCPU's vcpu_info in a zeroed page of its own and enables its upcall PPI.
    public static func registerThisVCPU() -> Int64 {
        let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
        let base = UInt64(UInt(bitPattern: page))
        for i in 0 ..< 512 { guest_store64(base + UInt64(i) * 8, 0) }
        // vcpu_register_vcpu_info { mfn, offset, rsvd }
        var info: (UInt64, UInt64) = (base >> 12, 0)
        let r = withUnsafeMutablePointer(to: &info) { p in
            Xen.call(.vcpu_op, VCPUOpCommand.register_vcpu_info.rawValue, UInt64(VCPU.index), UInt64(UInt(bitPattern: p)))
        }
        if r == 0 { vcpuInfos[VCPU.index] = base }
        Interrupts.enable(GuestLayout.eventChannelPPI)
        return r
    }

    /// A port whose events go to vCPU `vcpu` (EVTCHNOP_bind_ipi), or the error.
    public static func bindIPI(vcpu: Int) -> Result<UInt32, XenCallError> {
        // evtchn_bind_ipi { uint32_t vcpu; evtchn_port_t port (out) }
        var bind: (UInt32, UInt32) = (UInt32(vcpu), 0)
        let r = Xen.call(.event_channel_op, EventChannelOpCommand.bind_ipi.rawValue, pointingTo: &bind)
        return r == 0 ? .success(bind.1) : .failure(XenCallError(code: r))
    }

    /// A port for domain `remote` to bind to (EVTCHNOP_alloc_unbound), or the error.
    public static func allocateUnbound(for remote: UInt16) -> Result<UInt32, XenCallError> {
        // evtchn_alloc_unbound { domid_t dom, remote_dom; evtchn_port_t port (out) }
        var alloc: (UInt32, UInt32) = (UInt32(domidSelf) | UInt32(remote) << 16, 0)
        let r = Xen.call(.event_channel_op, EventChannelOpCommand.alloc_unbound.rawValue, pointingTo: &alloc)
        return r == 0 ? .success(alloc.1) : .failure(XenCallError(code: r))
    }

    /// This end of domain `remote`'s port `port` (EVTCHNOP_bind_interdomain), or the error.
    public static func bindInterdomain(_ remote: UInt16, port: UInt32) -> Result<UInt32, XenCallError> {
        // evtchn_bind_interdomain { domid_t remote_dom; evtchn_port_t remote_port, local_port (out) }
        var bind: (UInt32, UInt32, UInt32) = (UInt32(remote), port, 0)
        let r = Xen.call(.event_channel_op, EventChannelOpCommand.bind_interdomain.rawValue, pointingTo: &bind)
        return r == 0 ? .success(bind.2) : .failure(XenCallError(code: r))
    }

    /// The domain at the other end of interdomain port `port` (EVTCHNOP_status), or nil if it is not one;
    /// a port bound to ourselves tells a guest its own domain ID.
    public static func remoteDomain(of port: UInt32) -> UInt16? {
        var status = EvtchnStatus()
        status.dom = domidSelf
        status.port = EventPort(port)
        let r = Xen.call(.event_channel_op, EventChannelOpCommand.status.rawValue, pointingTo: &status)
        return r == 0 && status.status == EvtchnStatus.interdomain ? UInt16(truncatingIfNeeded: status.u0) : nil
    }

    @discardableResult
    public static func send(_ port: UInt32) -> Int64 {
        var p = port
        return Xen.call(.event_channel_op, EventChannelOpCommand.send.rawValue, pointingTo: &p)
    }

    /// Masking is the guest's own business: a bit in shared_info.
    public static func mask(_ port: UInt32) {
        _ = guest_fetch_or64(bitWord(SharedInfoLayout.evtchnMask, port), 1 << UInt64(port % 64))
    }

    /// Unmasks through the hypervisor (EVTCHNOP_unmask), which announces an event that came while masked.
    public static func unmask(_ port: UInt32) {
        var p = port
        Xen.call(.event_channel_op, EventChannelOpCommand.unmask.rawValue, pointingTo: &p)
    }

    public static func isPending(_ port: UInt32) -> Bool {
        guest_load64(bitWord(SharedInfoLayout.evtchnPending, port)) >> UInt64(port % 64) & 1 != 0
    }

    /// Takes a port's pending bit back without handling it.
    public static func clear(_ port: UInt32) {
        _ = guest_fetch_and64(bitWord(SharedInfoLayout.evtchnPending, port), ~(1 << UInt64(port % 64)))
    }

    private static func bitWord(_ array: Int, _ port: UInt32) -> UInt64 {
        sharedInfo + UInt64(array) + UInt64(port / 64) * 8
    }

    /// The upcall, as Linux takes it: clear the flag, take the selector, then clear and hand on each
    /// pending unmasked port of the selected words.
    public static func upcall() {
        let info = vcpuInfos[VCPU.index]
        guard info != 0 else { return }
        while guest_exchange8(info + UInt64(VCPUInfoLayout.upcallPending), 0) != 0 {
            var words = guest_exchange64(info + UInt64(VCPUInfoLayout.pendingSelector), 0)
            while words != 0 {
                let w = UInt32(words.trailingZeroBitCount)
                words &= words - 1
                let mask = guest_load64(sharedInfo + UInt64(SharedInfoLayout.evtchnMask) + UInt64(w) * 8)
                var bits = guest_load64(bitWord(SharedInfoLayout.evtchnPending, w * 64)) & ~mask
                while bits != 0 {
                    let port = w * 64 + UInt32(bits.trailingZeroBitCount)
                    bits &= bits - 1
                    clear(port)
                    handler?(port)
                }
            }
        }
    }
}
