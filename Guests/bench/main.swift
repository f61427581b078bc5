// The benchmark guest: the same image measures the same operations under Tern and under Xen 4.17,
// with the architected counter, from inside. Under QEMU's -icount shift=0 every instruction (the
// hypervisor's included) takes 1 ns of virtual time, so ticks per operation (16 ns each at 62.5 MHz)
// are instructions per operation, deterministic across runs.
// Output: "bench: <case> ticks_x100=<ticks per op × 100> iterations=<n>", then "bench: done".
import GuestKit
import GuestKitAsm
import TernCore

nonisolated(unsafe) var sgisTaken = 0
nonisolated(unsafe) var eventsTaken = 0
nonisolated(unsafe) var sharedInfo: UInt64 = 0
nonisolated(unsafe) var vcpuInfo: UInt64 = 0
nonisolated(unsafe) var listeningPort: UInt32 = 0
nonisolated(unsafe) var partnerReady = false
nonisolated(unsafe) var partnerStop = false

let selfIPI: UInt32 = 1

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let n = UInt64(args.integer("iterations", default: 4096))
    switch args.text("role", default: "") {
    case "": break
    case let role:
        scaling(role, domains: UInt64(args.integer("domains", default: 2)), n)
        return
    }

    // The counter started with the machine: under -icount shift=0 this is the virtual time (16 ns a
    // tick) from power-on to the first line of this guest, hypervisor boot included.
    print("bench: up at tick \(read_cntvct_el0())")
    interruptHandler = handle
    Interrupts.start()
    Interrupts.enable(selfIPI)
    Interrupts.enable(GuestLayout.eventChannelPPI)

    measure("null hypercall (xen_version)", n) { _ = Xen.call(.xen_version, XenVersionCommand.version.rawValue) }
    var buffer: (UInt64, UInt64) = (0, 0)
    let address = withUnsafeMutablePointer(to: &buffer) { UInt64(UInt(bitPattern: $0)) }
    measure("hypercall copying 16 bytes (extraversion)", n) {
        _ = Xen.call(.xen_version, XenVersionCommand.extraversion.rawValue, address)
    }
    let iidr = GuestLayout.gicDistributor.raw + 0x8
    measure("GIC distributor read (IIDR, trapped)", n) { _ = guest_load32(iidr) }
    measure("self-IPI (SGI sent, taken, ended)", n) {
        let before = sgisTaken
        Interrupts.sendToSelf(selfIPI)
        while sgisTaken == before {}
    }
    if let sendPort = setUpEventChannel() {
        measure("event channel send + upcall", n) {
            let before = eventsTaken
            var port = sendPort
            withUnsafeMutablePointer(to: &port) { p in
                _ = Xen.call(.event_channel_op, EventChannelOpCommand.send.rawValue, UInt64(UInt(bitPattern: p)))
            }
            while eventsTaken == before {}
        }
        measureGrants(sendPort, n)
    } else {
        print("bench: event channel send + upcall unavailable")
    }
    if PSCI.startVCPU(1) == 0 {
        while !partnerReady {}
        // Each round of SCHEDOP_yield hands the one physical CPU to the partner and back: two switches.
        measure("vCPU switch (SCHEDOP_yield, 2 vCPUs on 1 CPU)", n, per: 2) { Xen.yield() }
        partnerStop = true
    } else {
        print("bench: vCPU switch unavailable")
    }
    print("bench: done")
    // A moment for the harness to ask the hypervisor about its memory before the machine goes away.
    Timer.sleep(milliseconds: 300)
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    partnerReady = true
    while !partnerStop { Xen.yield() }
    PSCI.stopThisVCPU()
}

/// Runs `body` n times after a warm-up and prints ticks per operation (× 100, to keep two decimals).
func measure(_ name: StaticString, _ n: UInt64, per: UInt64 = 1, _ body: () -> Void) {
    for _ in 0 ..< 16 { body() }
    let start = read_cntvct_el0()
    for _ in 0 ..< n { body() }
    let ticks = read_cntvct_el0() - start
    print("bench: \(name) ticks_x100=\(ticks * 100 / (n * per)) iterations=\(n)")
}

func handle(_ intid: UInt32) {
    if intid == selfIPI {
        sgisTaken += 1
    } else if intid == GuestLayout.eventChannelPPI {
        takeEvents()
    }
}

/// The 2-level upcall, as Linux does it: clear the flag, take the selector, clear and count each
/// pending unmasked port.
func takeEvents() {
    guard vcpuInfo != 0 else { return }
    while guest_exchange8(vcpuInfo + UInt64(VCPUInfoLayout.upcallPending), 0) != 0 {
        var words = guest_exchange64(vcpuInfo + UInt64(VCPUInfoLayout.pendingSelector), 0)
        while words != 0 {
            let w = UInt64(words.trailingZeroBitCount)
            words &= words - 1
            let pendingWord = sharedInfo + UInt64(SharedInfoLayout.evtchnPending) + w * 8
            let mask = guest_load64(sharedInfo + UInt64(SharedInfoLayout.evtchnMask) + w * 8)
            var bits = guest_load64(pendingWord) & ~mask
            while bits != 0 {
                let bit = UInt64(bits.trailingZeroBitCount)
                bits &= bits - 1
                _ = guest_fetch_and64(pendingWord, ~(1 << bit))
                if w * 64 + bit == UInt64(listeningPort) { eventsTaken += 1 }
            }
        }
    }
}

/// What a backend pays per request: mapping a granted 4 KiB page and unmapping it (blkback without
/// persistent grants, netback's transmit side), and copying a granted page (netback's receive side).
/// The grant is one of our own (to ourselves, so no peer is needed); `port` is bound to ourselves and
/// so tells our domain ID, which map and copy take.
func measureGrants(_ port: UInt32, _ n: UInt64) {
    let mapAddress: UInt64 = 0x3000_0000        // nothing there in a domain of ours
    let ref: UInt32 = 8                         // the first not reserved for the toolstack
    guard let own = Events.remoteDomain(of: port) else { return print("bench: EVTCHNOP_status failed") }
    let placed = Grants.placeTable()
    guard placed == 0 else { return print("bench: placing the grant table = \(placed)") }
    let page = UInt64(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)))
    let target = UInt64(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)))
    for i in 0 ..< 512 { guest_store64(page + UInt64(i) * 8, UInt64(i)) }
    Grants.grant(ref, page: page, to: own)
    let (status, handle) = Grants.map(ref, of: own, at: mapAddress)
    guard status == 0, guest_load64(mapAddress + 8) == 1, Grants.unmap(handle, at: mapAddress) == 0 else {
        return print("bench: grant map of our own page = \(status)")
    }
    measure("grant map + unmap (4 KiB page)", n) {
        let (_, h) = Grants.map(ref, of: own, at: mapAddress)
        _ = Grants.unmap(h, at: mapAddress)
    }
    guard Grants.copy(from: .grant(ref, of: own), to: .frame(target >> 12), length: 4096) == 0,
          guest_load64(target + 4088) == 511 else { return print("bench: grant copy failed") }
    measure("grant copy (4 KiB page)", n) {
        _ = Grants.copy(from: .grant(ref, of: own), to: .frame(target >> 12), length: 4096)
    }
}

/// shared_info and vcpu_info in pages of our own, then a channel from this domain to itself: one port
/// allocated for ourselves, the other bound to it. Returns the port to send on.
func setUpEventChannel() -> UInt32? {
    switch Xen.mapSharedInfo() {
    case .success(let base): sharedInfo = base
    case .failure(let e): print("bench: add_to_physmap(shared_info) = \(e.code)"); return nil
    }
    let page = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)
    let infoPage = UInt64(UInt(bitPattern: page))
    for i in 0 ..< 512 { guest_store64(infoPage + UInt64(i) * 8, 0) }
    // vcpu_register_vcpu_info { mfn, offset, rsvd } for vCPU 0, in a page of its own.
    var info: (UInt64, UInt64) = (infoPage >> 12, 0)
    let registered = withUnsafeMutablePointer(to: &info) { p in
        Xen.call(.vcpu_op, VCPUOpCommand.register_vcpu_info.rawValue, 0, UInt64(UInt(bitPattern: p)))
    }
    guard registered == 0 else { print("bench: register_vcpu_info = \(registered)"); return nil }
    vcpuInfo = infoPage
    // A port allocated for ourselves, and the other end bound to it.
    switch Events.allocateUnbound(for: domidSelf) {
    case .success(let port): listeningPort = port
    case .failure(let e): print("bench: alloc_unbound = \(e.code)"); return nil
    }
    let sendPort: UInt32
    switch Events.bindInterdomain(domidSelf, port: listeningPort) {
    case .success(let port): sendPort = port
    case .failure(let e): print("bench: bind_interdomain = \(e.code)"); return nil
    }
    // Let the registration's "look at everything" upcall pass before measuring.
    for _ in 0 ..< 1000 { guest_load32(GuestLayout.gicDistributor.raw + 8) }
    return sendPort
}

/// The scaling rows (make bench runs N domains of this guest on one CPU): `role=ring` yields for ever
/// and `role=ring-lead` measures a switch as a round of yields through all N domains; `role=sleeper`
/// sleeps on its timer for ever (a period of its own, so the sleepers are many and spread) and
/// `role=sleep-lead` measures a wake-up: from the moment its timer is due to the guest running again.
func scaling(_ role: String, domains: UInt64, _ n: UInt64) {
    switch role {
    case "ring":
        while true { Xen.yield() }
    case "sleeper":
        Interrupts.start()
        let period = 40 + UInt64(read_cntvct_el0() % 23)
        while true { Timer.sleep(milliseconds: period) }
    case "ring-lead":
        // One yield here lets every other domain run once before this one runs again: N switches.
        print("bench: up")
        for _ in 0 ..< 16 { Xen.yield() }
        let start = read_cntvct_el0()
        for _ in 0 ..< n { Xen.yield() }
        let ticks = read_cntvct_el0() - start
        print("bench: vCPU switch among \(domains) domains ticks_x100=\(ticks * 100 / (n * domains)) iterations=\(n)")
    case "sleep-lead":
        print("bench: up")
        Interrupts.start()
        Timer.sleep(milliseconds: 5)
        var total: UInt64 = 0
        for _ in 0 ..< n {
            // 100 µs ahead; the sleep returns once the timer's interrupt has been taken.
            let due = read_cntvct_el0() + Timer.frequency / 10_000
            Timer.sleep(until: due)
            total += read_cntvct_el0() - due
        }
        print("bench: wake-up among \(domains) domains ticks_x100=\(total * 100 / n) iterations=\(n)")
    default:
        print("bench: unknown role \(role)")
    }
    print("bench: done")
    Timer.sleep(milliseconds: 300)
    Xen.shutdown(.poweroff)
}
