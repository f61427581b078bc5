// libFuzzer targets for what Tern reads from outside its trust, compiled with TernCore's own sources and
// the host tests' fakes under the address sanitizer (scripts/fuzz-host.sh builds and runs them).
// TERN_FUZZ_TARGET picks one:
//   xlcfg   an xl.cfg file, as `tern` reads it (XLConfigParser): a bad one is an error naming its line
//   fdt     a boot device tree blob (FlattenedDeviceTree.parse, then the look-ups boot makes); a tree
//           that parses must write out and read back as itself
//   evtchn  a run of event_channel_op calls by three domains (dom0 and two domUs) with structures and
//           pointers from the input, against the host model of their port tables
//   grant   a run of grant_table_op calls (any command, count and pointer) against the host model
//   chosen  the `/chosen` domain nodes of a boot device tree (DomainSpec.read, DomainIDs.check): what
//           is read has its sizes in range and its modules in RAM, and the guest's own device tree
//           built from it reads back with its command line
//   control a run of domctl and sysctl calls by dom0 and two domUs (any command, structure, domain and
//           pointer) against a fake machine whose domains come and go: a domU is always refused, and
//           every call on the machine keeps the host protocol's word (FakeToolstack checks it)
//   memory  a run of memory_op calls by dom0 and two domUs (any command, structure, domain, list and
//           pointer, with continuations) against a fake host that checks its protocol's word: a domU
//           acts only on itself, an extent is aligned to its order, a grant frame is in the window
//   image   a Linux Image header and the kernel, initrd and RAM sizes from a boot device tree: where
//           LinuxImage puts them must fit, in order
// A trap (bounds, overflow, a failed precondition) or a sanitizer report is a finding.
@testable import TernCore
#if canImport(Glibc)
import Glibc
#endif

/// The input, taken a piece at a time; past its end every read is zero.
struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    var isEmpty: Bool { at >= bytes.count }

    mutating func byte() -> UInt8 {
        defer { at += 1 }
        return at < bytes.count ? bytes[at] : 0
    }

    mutating func word() -> UInt64 { (0 ..< 8).reduce(0) { v, i in v | UInt64(byte()) << (8 * UInt64(i)) } }

    /// One of `values`, or (for a byte past their count) a word from the input.
    mutating func pick(_ values: [UInt64]) -> UInt64 {
        let b = Int(byte())
        return b < values.count ? values[b] : word()
    }
}

/// The words as a guest lays them out in memory (little-endian), for a structure the input fills.
func littleEndianBytes(_ words: [UInt64]) -> [UInt8] {
    words.flatMap { v in (0 ..< 8).map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
}

/// A broken rule is a finding: says what broke (fatalError's message, unlike precondition's, stays in -O).
func check(_ holds: Bool, _ message: @autoclosure () -> String) {
    if !holds { fatalError(message()) }
}

/// Values at the edges of what a guest may pass.
let interesting: [UInt64] = [0, 1, 2, 3, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1_0000_0000, .max, .max - 1, 1 << 63, 4095, 4096]

func fuzzXLConfig(_ input: UnsafeRawBufferPointer) {
    let text = String(decoding: input, as: UTF8.self)
    do {
        _ = try XLConfigParser.parse(text, file: "fuzz.cfg")
    } catch {
        // Where the problem is must be a line of the file (0: the file as a whole).
        let lines = text.utf8.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }     // as the parser counts: "\r\n" is one
        check(error.line >= 0 && error.line <= lines, "error on line \(error.line) of a \(lines)-line file")
        _ = error.description
    }
}

func sameTree(_ a: DTNode, _ b: DTNode) -> Bool {
    a.name == b.name && a.properties == b.properties && a.children.count == b.children.count
        && zip(a.children, b.children).allSatisfy { sameTree($0, $1) }
}

func fuzzDeviceTree(_ input: UnsafeRawBufferPointer) {
    guard let root = try? FlattenedDeviceTree.parse(input) else { return }
    // The look-ups boot makes of the host's tree.
    for path: StaticString in ["/chosen", "/cpus", "/memory", "/psci", "/timer", "/intc", "/hypervisor"] {
        guard let node = root.node(atPath: path) else { continue }
        for p in node.properties { for i in 0 ..< 4 { _ = p.cell(i) }; _ = p.containsString("xen,domain") }
    }
    for node in root.all(where: { $0.isCompatible("xen,domain") || $0.isCompatible("multiboot,module") }) {
        _ = node.property("reg")?.cell(0)
        _ = root.parent(of: node)
    }
    let written = FlattenedDeviceTree.serialize(root)
    let reread = written.withUnsafeBytes { try? FlattenedDeviceTree.parse($0) }
    check(reread.map { sameTree(root, $0) } == true, "a tree Tern wrote did not read back as itself")
}

func fuzzEventChannels(_ input: UnsafeRawBufferPointer) {
    var input = FuzzInput(bytes: input)
    let machine = FakeEventMachine()
    machine.add(0)
    machine.add(1)
    machine.add(2, vcpus: 1)
    var memory = FakeGuestMemory()
    memory.map(0x1000)
    memory.map(0x2000, writable: false)
    // A structure where it is whole, one that runs into a read-only page, one in it, one in nothing.
    let pointers: [UInt64] = [0x1000, 0x1FF8, 0x2000, 0x9000, 0x1FFC]
    while !input.isEmpty {
        let caller = UInt16(input.byte() % 3)
        let command = EventChannelOpCommand(rawValue: UInt64(input.byte() % 14))!
        // The structure: ports and domain IDs from the small numbers that name real ones, or anything.
        var fields: [UInt64] = []
        for _ in 0 ..< 4 { fields.append(input.pick([0, 1, 2, 3, 4, 5, 0x7FF0, 0xFFFF, 0x3FF, 0x400] + interesting)) }
        _ = littleEndianBytes(fields).withUnsafeBytes { memory.copy(to: VirtualAddress(0x1000), from: $0.baseAddress!, count: $0.count) }
        let pointer = input.pick(pointers)
        let host = FakeEventMachine.Host(machine: machine, caller: DomainID(caller))
        _ = EventChannelOp.handle(command, VirtualAddress(pointer), &memory, host)
    }
}

func fuzzGrantTable(_ input: UnsafeRawBufferPointer) {
    var input = FuzzInput(bytes: input)
    let host = FakeGrantHost()
    var memory = FakeGuestMemory()
    for page in 0 ..< 3 { memory.map(0x10000 + UInt64(page) * 0x1000) }
    memory.map(0x13000, writable: false)
    let pointers: [UInt64] = [0x10000, 0x10FF8, 0x12FF0, 0x13000, 0x20000, 0x13FF8]
    var steps = 0
    while !input.isEmpty && steps < 64 {
        steps += 1
        let command = UInt64(input.byte() % 15)
        let count = input.pick([1, 2, 3, 0, 16, 512, 0xFFFF_FFFF, 1 << 31] + interesting)
        var fields: [UInt64] = []
        for _ in 0 ..< 12 { fields.append(input.pick([0, 1, 2, 3, 7, 0x3FF, 0x400, 0x40000, 0x7FF0, 0x1000] + interesting)) }
        _ = littleEndianBytes(fields).withUnsafeBytes { memory.copy(to: VirtualAddress(0x10000), from: $0.baseAddress!, count: $0.count) }
        host.mapAnswer = input.byte() & 1 == 0 ? .success((UInt32(input.byte()), input.word())) : .failure(GrantStatusError(.badGrantRef))
        host.unmapAnswer = input.byte() & 1 == 0 ? .okay : .badHandle
        host.flushAnswer = input.pick(interesting)
        // A continuation comes back for the rest of a long batch, as the guest would call again.
        var pointer = input.pick(pointers), rest = count
        for _ in 0 ..< 4 {
            guard case .continues(let next, let left) = GrantTableOp.handle(command, VirtualAddress(pointer), rest, &memory, host)
            else { break }
            (pointer, rest) = (next.raw, left)
        }
    }
}

func fuzzLinuxImage(_ input: UnsafeRawBufferPointer) {
    guard let header = LinuxImage.Header(input) else { return }      // at least a header's bytes
    var rest = FuzzInput(bytes: UnsafeRawBufferPointer(rebasing: input[LinuxImage.headerSize...]))
    let sizes = [0, 64, 0x20_0000, 0x4000_0000, 1 << 40] + interesting
    let (kernel, ramdisk, memory) = (rest.pick(sizes), rest.pick(sizes), rest.pick(sizes))
    guard let l = LinuxImage.layout(header, kernelSize: kernel, ramdiskSize: ramdisk, memoryBytes: memory) else { return }
    // What it placed fits, in order, without a sum that wraps.
    func end(_ a: UInt64, _ b: UInt64) -> UInt64? { let (s, o) = a.addingReportingOverflow(b); return o ? nil : s }
    check(end(l.textOffset, max(header.imageSize, kernel)).map { $0 <= l.ramdiskOffset } == true
          && end(l.ramdiskOffset, ramdisk).map { $0 <= l.dtbOffset } == true
          && end(l.dtbOffset, 0x20_0000) == memory,
          "\(l) does not fit kernel \(kernel) (header \(header)), initrd \(ramdisk) in \(memory) bytes")
}

func fuzzChosenDomains(_ input: UnsafeRawBufferPointer) {
    guard let root = try? FlattenedDeviceTree.parse(input), let chosen = root.child("chosen") else { return }
    let ram = [PhysicalRange(base: HostPhysicalAddress(0x4000_0000), size: 0x4000_0000),
               PhysicalRange(base: HostPhysicalAddress(0x1_0000_0000), size: 0x1000_0000)]
    let tern = PhysicalRange(base: HostPhysicalAddress(0x4000_0000), size: 0x80_0000)
    let nodes = chosen.children.filter { $0.isCompatible("xen,domain") }
    let ids = nodes.indices.map { nodes[$0].property("tern,domid")?.u32 ?? UInt32($0) }
    if DomainIDs.check(ids) != nil { return }
    for (node, id) in zip(nodes, ids) {
        guard case .spec(let spec) = DomainSpec.read(node, id: DomainID(UInt16(id)), ram: ram, reserved: [tern]) else { continue }
        func inRAM(_ r: PhysicalRange) -> Bool {
            ram.contains { $0.contains(r.base, length: r.size) } && !(r.base.raw < tern.end.raw && tern.base.raw < r.end.raw)
        }
        check(spec.memoryBytes >= 0x20_0000 && spec.memoryBytes % 0x20_0000 == 0 && spec.memoryBytes <= 1 << 50,
              "memory of \(spec.memoryBytes) bytes")
        check(spec.vcpus >= 1 && spec.vcpus <= TernLimits.maximumVCPUsPerDomain, "\(spec.vcpus) vCPUs")
        check(inRAM(spec.kernel) && spec.ramdisk.map(inRAM) != false, "a module outside RAM: \(spec.kernel), \(String(describing: spec.ramdisk))")
        check(!spec.bootargs.contains(0), "a NUL inside the command line")
        let tree = GuestDeviceTree.build(GuestMachine(
            memory: [(GuestLayout.ram, spec.memoryBytes)], vcpus: spec.vcpus, bootargs: spec.bootargs,
            initrd: spec.ramdisk.map { (GuestLayout.ram, GuestLayout.ram + $0.size) }, xen: spec.xenPV, uart: spec.uart))
        let guest = tree.withUnsafeBytes { try? FlattenedDeviceTree.parse($0) }
        check(guest?.child("chosen")?.property("bootargs")?.string == spec.bootargs,
              "the guest's device tree does not carry its command line")
    }
}

func fuzzControlPlane(_ input: UnsafeRawBufferPointer) {
    var input = FuzzInput(bytes: input)
    let host = FakeToolstack()
    var memory = FakeGuestMemory()
    for page in 0 ..< 4 { memory.map(0x10000 + UInt64(page) * 0x1000) }
    memory.map(0x14000, writable: false)
    // A structure where it is whole, at a page's end, running into a read-only page, in one, in nothing.
    let pointers: [UInt64] = [0x10000, 0x11F80, 0x13FC0, 0x14000, 0x20000]
    // Buffers a structure may point to: in RAM, read-only, across a page end, in nothing.
    let buffers: [UInt64] = [0x12000, 0x14000, 0x12FF8, 0x30000, 0x10000]
    let domctls: [UInt64] = [1, 2, 3, 4, 5, 9, 11, 12, 14, 15, 16, 17, 25, 35, 36, 68, 71, 85, 86, 6, 80]
    let sysctls: [UInt64] = [1, 3, 4, 6, 7, 16, 17, 18, 19, 2, 40]
    var steps = 0
    while !input.isEmpty && steps < 64 {
        steps += 1
        let caller = UInt16(input.byte() % 3)                  // 0 is the control domain
        host.caller = DomainID(caller)
        let isSysctl = input.byte() & 1 == 1
        let command = input.pick(isSysctl ? sysctls : domctls)
        let version: UInt64 = input.byte() < 240 ? 0x15 : input.word()
        let domain = input.pick([0, 1, 2, 3, 4, 5, 0x7FF0, 0x7FF1, 0xFFFF])
        var words = [command & 0xFFFF_FFFF | version << 32, domain & 0xFFFF]
        // Besides the usual values, those a well-formed createdomain is made of, word by word (flags 3 in
        // the high half, one vCPU, grant frames -1, grant table v1), so domains are made too.
        let creation: [UInt64] = [0x3_0000_0000, 0x1_0000_0000, 0xFFFF_FFFF_0000_0000]
        for _ in 0 ..< 16 { words.append(input.pick([0, 1, 2, 3, 7, 8, 16, 64] + creation + buffers + interesting)) }
        let at = input.pick(pointers)
        _ = littleEndianBytes(words).withUnsafeBytes { memory.copy(to: VirtualAddress(at), from: $0.baseAddress!, count: $0.count) }
        let result = isSysctl
            ? Sysctl.perform(VirtualAddress(at), &memory, privileged: caller == 0, host)
            : Domctl.perform(VirtualAddress(at), &memory, caller: DomainID(caller), privileged: caller == 0, host)
        check(caller == 0 || result != nil, "domain \(caller)'s \(isSysctl ? "sysctl" : "domctl") \(command) was not refused")
    }
}

func fuzzMemoryOp(_ input: UnsafeRawBufferPointer) {
    var input = FuzzInput(bytes: input)
    var memory = FakeGuestMemory()
    for page in 0 ..< 4 { memory.map(0x10000 + UInt64(page) * 0x1000) }
    memory.map(0x14000, writable: false)
    let pointers: [UInt64] = [0x10000, 0x11FF0, 0x13FE8, 0x14000, 0x20000]
    // Where a structure's lists (frames, indexes, errors) are: in RAM, at a page's end, read-only, nowhere.
    let lists: [UInt64] = [0x12000, 0x12FF8, 0x14000, 0x30000, 0x10000]
    let commands: [UInt64] = [0, 1, 2, 3, 4, 6, 7, 15, 18, 19, 23, 28, 5, 63]
    let window = GuestLayout.grantTable.raw >> 12
    var steps = 0
    while !input.isEmpty && steps < 64 {
        steps += 1
        let host = FakeMemoryHost(caller: UInt16(input.byte() % 3))
        var command = input.pick(commands) | (input.byte() < 200 ? 0 : input.word() << 6)
        var words: [UInt64] = []
        for _ in 0 ..< 8 { words.append(input.pick([0, 1, 2, 3, 9, 18, 0x7FF0, 0x1_0000_0002, 0x2_0000_0000] + lists + interesting)) }
        var frames: [UInt64] = []
        for i in 0 ..< 8 { frames.append(input.pick([0x40000 + UInt64(i), window + UInt64(i), 0x8_0000_0000, 0x7F_FFFF_F000] + interesting)) }
        let at = input.pick(pointers)
        _ = littleEndianBytes(frames).withUnsafeBytes { memory.copy(to: VirtualAddress(0x12000), from: $0.baseAddress!, count: $0.count) }
        _ = littleEndianBytes(words).withUnsafeBytes { memory.copy(to: VirtualAddress(at), from: $0.baseAddress!, count: $0.count) }
        // A continuation comes back as the command to make again, as the guest's x0 would.
        for _ in 0 ..< 4 {
            let before = host.continuations
            let result = MemoryOp.handle(command, VirtualAddress(at), &memory, host)
            guard host.continuations > before else { break }
            command = result
        }
    }
}

nonisolated(unsafe) var fuzzTarget: ((UnsafeRawBufferPointer) -> Void)?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let name = getenv("TERN_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    let targets: [String: (UnsafeRawBufferPointer) -> Void] = [
        "xlcfg": fuzzXLConfig, "fdt": fuzzDeviceTree, "evtchn": fuzzEventChannels, "grant": fuzzGrantTable,
        "image": fuzzLinuxImage, "chosen": fuzzChosenDomains,
        "control": fuzzControlPlane, "memory": fuzzMemoryOp,
    ]
    guard let target = targets[name] else {
        print("tern-fuzz: set TERN_FUZZ_TARGET to one of \(targets.keys.sorted().joined(separator: ", "))")
        exit(2)
    }
    fuzzTarget = target
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTarget?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
