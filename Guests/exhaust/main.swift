// The exhaustion guest: a domU that takes all there is of one resource after another - every event
// channel, every grant-mapping handle (maptrack entry), every vCPU it has, the console, memory it may
// not have - checks it is refused with Xen's answer, then keeps asking for more, holding what it has,
// for `hold=<s>` seconds (default 2) before it gives it all back. Beside it, the canary's round trips
// with dom0 show what the others' service is meanwhile (`tern bench`); each phase is bracketed by
// "exhaust: <phase> holding" and "exhaust: <phase> released". `domid=<n>` is its own ID (it grants to
// itself), `modes=` a subset (events,maptrack,vcpus,console,memory).
import GuestKit
import GuestKitAsm
import TernCore

/// Secondary vCPUs spin until told to stop, then turn themselves off.
nonisolated(unsafe) var stopSpinning: UInt64 = 0
nonisolated(unsafe) var spinners: UInt64 = 0

func report(_ phase: StaticString, took count: Int, _ what: StaticString, then got: Int64, xen expected: Int64, _ name: StaticString) {
    if got == expected {
        print("exhaust: \(phase): took \(count) \(what), then \(got) (\(name), as Xen)")
    } else {
        print("exhaust: FAILED \(phase): took \(count) \(what), then \(got) where Xen gives \(expected) (\(name))")
    }
}

/// Asks `again` for more until `seconds` have passed; it must keep being refused with `expected`.
func hold(_ phase: StaticString, seconds: UInt64, expected: Int64, again: () -> Int64) {
    print("exhaust: \(phase) holding")
    let end = Timer.ticks + seconds * Timer.frequency
    var asks = 0, wrong = 0
    while Timer.ticks < end {
        if again() != expected { wrong += 1 }
        asks += 1
    }
    if wrong > 0 { print("exhaust: FAILED \(phase): \(wrong) of \(asks) more asks not refused with \(expected)") }
    print("exhaust: \(phase) released after \(asks) more asks")
}

func events(seconds: UInt64) {
    var ports: [UInt32] = []
    var refusal: Int64 = 0
    while true {
        switch Events.allocateUnbound(for: 0) {
        case .success(let p): ports.append(p)
        case .failure(let e): refusal = e.code
        }
        if refusal != 0 { break }
    }
    report("events", took: ports.count, "ports", then: refusal, xen: -28, "ENOSPC")
    hold("events", seconds: seconds, expected: -28) {
        if case .failure(let e) = Events.allocateUnbound(for: 0) { return e.code }
        return 0
    }
    for var p in ports { _ = Xen.call(.event_channel_op, EventChannelOpCommand.close.rawValue, pointingTo: &p) }
}

/// Maps its own grants, each at a page of its own past RAM: one grant again and again until it may not
/// be used once more (Xen counts each kind of use of a grant in a byte: the 129th is refused), then
/// 2,559 grants about a hundred times each until the handles run out: Xen 4.17's maptrack is 1024
/// frames of 256 by default, then GNTST_no_space. (Mapped from one vCPU, Xen gives one handle fewer:
/// each vCPU's free list keeps its last entry back. Tern gives the table's size.)
func maptrack(self id: UInt16, ramEnd: UInt64, seconds: UInt64) {
    let handlesXenHas = 1024 * 256
    let grants: UInt32 = 2559                        // refs 1-2559: frames 0-4 of the table
    for frame: UInt64 in 0 ..< 5 {
        let placed = Grants.placeTable(frame: frame)
        guard placed == 0 else { return print("exhaust: FAILED maptrack: grant table frame \(frame) not placed: \(placed)") }
    }
    let page = UInt64(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)))
    for ref in 1 ... grants { Grants.grant(ref, page: page, to: id) }
    func slot(_ i: Int) -> UInt64 { ramEnd + 0x20_0000 + UInt64(i) * 4096 }
    // The handles (room for 512 Ki): the 2 MiB of RAM below the device tree's, far past this image.
    let handles = UnsafeMutablePointer<UInt32>(bitPattern: UInt(ramEnd - 0x40_0000))!
    var count = 0
    var refusal: Int16 = 0
    while count < 1000 {
        let (status, handle) = Grants.map(1, of: id, at: slot(count))
        guard status == 0 else {
            refusal = status
            break
        }
        handles[count] = handle
        count += 1
    }
    report("maptrack", took: count, "maps of one grant", then: Int64(refusal), xen: -1, "GNTST_general_error")
    for i in 0 ..< count { _ = Grants.unmap(handles[i], at: slot(i)) }
    count = 0
    // Past the table Xen keeps for one domain, in case there were no limit.
    while count < handlesXenHas + 4096 {
        let ref = 1 + UInt32(count % Int(grants))
        let (status, handle) = Grants.map(ref, of: id, at: slot(count))
        guard status == 0 else {
            refusal = status
            break
        }
        handles[count] = handle
        count += 1
    }
    if count != handlesXenHas && count != handlesXenHas - 1 {
        print("exhaust: FAILED maptrack: \(count) maps where Xen's table has \(handlesXenHas)")
    }
    report("maptrack", took: count, "maps of 2559 grants", then: Int64(refusal), xen: -13, "GNTST_no_space")
    hold("maptrack", seconds: seconds, expected: -13) {
        Int64(Grants.map(2, of: id, at: ramEnd + 0x1F_F000).0)
    }
    for i in 0 ..< count { _ = Grants.unmap(handles[i], at: slot(i)) }
}

/// Every vCPU it has on, spinning; one past them refused by PSCI and by VCPUOP_up.
func vcpus(count: Int, seconds: UInt64) {
    for i in 1 ..< count { _ = PSCI.startVCPU(i) }
    while atomicLoad(&spinners) != UInt64(count - 1) { Xen.yield() }
    let refused = PSCI.startVCPU(count)
    report("vcpus", took: count, "vcpus", then: refused, xen: -2, "PSCI_INVALID_PARAMETERS")
    let up = Xen.call(.vcpu_op, 2, UInt64(count), 0)     // VCPUOP_up
    report("vcpus", took: count, "vcpus", then: up, xen: -2, "-ENOENT from VCPUOP_up")
    hold("vcpus", seconds: seconds, expected: -2) { PSCI.startVCPU(count) }
    atomicStore(&stopSpinning, 1)
    for i in 1 ..< count { while PSCI.isOn(i) { Xen.yield() } }
}

/// Writes as fast as it can: Xen (and Tern) take it all, a bounded piece per trap, and answer 0.
func console(seconds: UInt64) {
    let size = 1024
    let text = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    let base = UInt64(UInt(bitPattern: text))
    for i in 0 ..< size { guest_store8(base + UInt64(i), i % 128 == 127 ? 0x0A : 0x2B) }
    let first = Xen.call(.console_io, ConsoleIOCommand.write.rawValue, UInt64(size), base)
    report("console", took: size, "bytes", then: first, xen: 0, "written")
    hold("console", seconds: seconds, expected: 0) {
        Xen.call(.console_io, ConsoleIOCommand.write.rawValue, UInt64(size), base)
    }
}

/// populate_physmap of pages it may not have (it has all its memory already): Xen answers with the
/// extents it did, none.
func memory(ramEnd: UInt64, seconds: UInt64) {
    let frames = UnsafeMutablePointer<UInt64>.allocate(capacity: 64)
    for i in 0 ..< 64 { frames[i] = (ramEnd + 0x100_0000) >> 12 + UInt64(i) }
    var request = XenMemoryReservation()
    request.extentStart = UInt64(UInt(bitPattern: frames))
    request.extents = 64
    request.domid = domidSelf
    let populate = MemoryOpCommand.populate_physmap.rawValue
    let done = Xen.call(.memory_op, populate, pointingTo: &request)
    report("memory", took: 0, "extents", then: done, xen: 0, "none of 64 extents done")
    hold("memory", seconds: seconds, expected: 0) { Xen.call(.memory_op, populate, pointingTo: &request) }
}


@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let seconds = UInt64(args.integer("hold", default: 2))
    let id = UInt16(args.integer("domid", default: 0))
    let vcpuCount = max(1, args.integer("vcpus", default: 1))
    let modes = (args.value("modes") ?? utf8Bytes("events,maptrack,vcpus,console,memory"))
        .split(separator: UInt8(ascii: ",")).map { Array($0) }
    func wants(_ mode: StaticString) -> Bool { modes.contains(utf8Bytes(mode)) }
    let ramEnd = GuestLayout.ram.raw + args.memoryBytes
    Interrupts.start()
    // Let the canary settle first: its first reports are the baseline.
    Timer.sleep(milliseconds: 3000)
    print("exhaust: starting")
    if wants("events") { events(seconds: seconds) }
    if wants("maptrack") { maptrack(self: id, ramEnd: ramEnd, seconds: seconds) }
    if wants("vcpus") { vcpus(count: vcpuCount, seconds: seconds) }
    if wants("console") { console(seconds: seconds) }
    if wants("memory") { memory(ramEnd: ramEnd, seconds: seconds) }
    // And after: the service is back.
    Timer.sleep(milliseconds: 2000)
    print("exhaust: done")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {
    atomicAdd(&spinners)
    while atomicLoad(&stopSpinning) == 0 {}
    PSCI.stopThisVCPU()
}
