import Foundation
import Testing
@testable import TernCore

// MARK: Helpers

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func parse(_ blob: [UInt8]) throws -> DTNode {
    try blob.withUnsafeBytes { try FlattenedDeviceTree.parse($0) }
}

private func parseError(_ blob: [UInt8]) -> DeviceTreeError? {
    blob.withUnsafeBytes { buffer in
        do throws(DeviceTreeError) {
            _ = try FlattenedDeviceTree.parse(buffer)
            return nil
        } catch {
            return error
        }
    }
}

private func sameTree(_ a: DTNode, _ b: DTNode) -> Bool {
    a.name == b.name && a.properties == b.properties && a.children.count == b.children.count
        && zip(a.children, b.children).allSatisfy { sameTree($0, $1) }
}

private func put32(_ value: UInt32, in blob: inout [UInt8], at offset: Int) {
    for k in 0..<4 { blob[offset + k] = UInt8(truncatingIfNeeded: value >> UInt32(24 - 8 * k)) }
}

private func get32(_ blob: [UInt8], at offset: Int) -> UInt32 {
    (0..<4).reduce(0) { $0 << 8 | UInt32(blob[offset + $1]) }
}

private func sampleTree() -> DTNode {
    let root = DTNode(name: [])
    root.set("#address-cells", u32: 2)
    root.set("#size-cells", u32: 2)
    root.set("compatible", strings: [bytes("tern,test"), bytes("linux,dummy-virt")])
    root.set("model", string: "Tern test")

    let chosen = root.addChild(DTNode("chosen"))
    chosen.set("bootargs", string: bytes("console=ttyAMA0 earlycon"))
    chosen.set("stdout-path", string: "/pl011@9000000")

    let memory = root.addChild(DTNode("memory@40000000"))
    memory.set("device_type", string: "memory")
    memory.setReg([(address: 0x4000_0000, size: 0x4000_0000)], addressCells: 2, sizeCells: 2)

    let cpus = root.addChild(DTNode("cpus"))
    cpus.set("#address-cells", u32: 1)
    cpus.set("#size-cells", u32: 0)
    for i in 0..<2 {
        let cpu = cpus.addChild(DTNode(name: bytes("cpu@\(i)")))
        cpu.set("device_type", string: "cpu")
        cpu.set("compatible", string: "arm,cortex-a57")
        cpu.set("reg", u32: UInt32(i))
        cpu.set("enable-method", string: "psci")
    }

    let gic = root.addChild(DTNode("intc@8000000"))
    gic.set("compatible", string: "arm,gic-v3")
    gic.setEmpty("interrupt-controller")
    gic.set("#interrupt-cells", u32: 3)
    gic.set("phandle", u32: 0x8001)
    gic.setReg([(0x800_0000, 0x1_0000), (0x80a_0000, 0xf6_0000)], addressCells: 2, sizeCells: 2)

    let uart = root.addChild(DTNode("pl011@9000000"))
    uart.set("compatible", strings: [bytes("arm,pl011"), bytes("arm,primecell")])
    uart.setReg([(0x900_0000, 0x1000)], addressCells: 2, sizeCells: 2)
    uart.set("interrupt-parent", u32: 0x8001)
    uart.set("interrupts", cells: [0, 1, 4])
    uart.set("odd", bytes: [1, 2, 3])  // exercises padding after a value that is not a multiple of 4
    root.set("interrupt-parent", u32: 0x8001)
    return root
}

// MARK: Model

@Test func deviceTreePropertyAccessors() {
    let p = DTProperty("x", value: [0, 0, 0, 5])
    #expect(p.u32 == 5)
    #expect(p.u64 == nil)
    #expect(p.cellCount == 1)
    #expect(p.cell(0) == 5)
    #expect(p.cell(1) == nil)
    #expect(p.cell(-1) == nil)

    let q = DTProperty("y", value: [0, 0, 0, 1, 0, 0, 0, 2, 9])
    #expect(q.cellCount == 2)
    #expect(q.cells == [1, 2])
    #expect(q.u32 == nil)
    #expect(DTProperty("z", value: [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]).u64 == 0x1234_5678_9abc_def0)

    let list = DTProperty("compatible", value: bytes("a,b\0c\0\0d\0"))
    #expect(list.strings == [bytes("a,b"), bytes("c"), [], bytes("d")])
    #expect(list.string == bytes("a,b"))
    #expect(list.containsString("c"))
    #expect(list.containsString("d"))
    #expect(!list.containsString("a"))
    #expect(DTProperty("t", value: bytes("tail")).strings == [bytes("tail")])
    #expect(DTProperty("e").strings.isEmpty)
    #expect(DTProperty("e").string == nil)
}

@Test func deviceTreeLookupAndBindings() {
    let root = sampleTree()
    #expect(root.node(atPath: "/") === root)
    #expect(root.node(atPath: "/chosen")?.property("bootargs")?.string == bytes("console=ttyAMA0 earlycon"))
    #expect(root.node(atPath: "/cpus/cpu@1")?.property("reg")?.u32 == 1)
    #expect(root.node(atPath: "cpus//cpu@0/")?.name == bytes("cpu@0"))
    #expect(root.node(atPath: "/memory")?.name == bytes("memory@40000000"))  // base-name match
    #expect(root.node(atPath: "/memory@0") == nil)
    #expect(root.node(atPath: "/nope/cpu@0") == nil)
    #expect(root.node(atPath: bytes("/cpus/cpu@1"))?.name == bytes("cpu@1"))
    #expect(root.child("cpus")?.child(named: bytes("cpu"))?.name == bytes("cpu@0"))

    let uart = root.child("pl011")!
    #expect(uart.baseName == bytes("pl011"))
    #expect(uart.unitAddress == bytes("9000000"))
    #expect(root.child("chosen")!.unitAddress == nil)
    #expect(uart.isCompatible("arm,primecell"))
    #expect(uart.isCompatible(bytes("arm,pl011")))
    #expect(!uart.isCompatible("arm,pl01"))
    #expect(uart.isEnabled)
    uart.set("status", string: "disabled")
    #expect(!uart.isEnabled)

    #expect(root.findCompatible("arm,cortex-a57").map(\.name) == [bytes("cpu@0"), bytes("cpu@1")])
    #expect(root.findCompatible("tern,test").first === root)
    #expect(root.findCompatible("nothing").isEmpty)

    #expect(root.addressCells == 2 && root.sizeCells == 2)
    #expect(uart.addressCells == 2 && uart.sizeCells == 1)  // specification defaults
    let gic = root.find(phandle: 0x8001)!
    #expect(gic.isCompatible("arm,gic-v3"))
    #expect(root.find(phandle: 7) == nil)
    let gicReg = gic.reg(in: root)
    #expect(gicReg.map(\.address) == [0x800_0000, 0x80a_0000])
    #expect(gicReg.map(\.size) == [0x1_0000, 0xf6_0000])

    let cpus = root.child("cpus")!
    let cpu1 = cpus.child("cpu@1")!
    #expect(root.parent(of: cpu1) === cpus)
    #expect(root.parent(of: root) == nil)
    #expect(cpu1.reg(in: cpus).map(\.address) == [1])
    #expect(cpu1.reg(in: cpus).map(\.size) == [0])
    #expect(cpu1.reg(parentAddressCells: 0, parentSizeCells: 0).isEmpty)

    let legacy = DTNode("old")
    legacy.set("linux,phandle", u32: 3)
    #expect(legacy.phandle == 3)
}

@Test func deviceTreeSetters() {
    let node = DTNode("n")
    node.set("a", u32: 1)
    node.set("b", string: bytes("x"))
    node.set("a", cells: [2, 3])  // replaces in place, keeping order
    #expect(node.properties.map(\.name) == [bytes("a"), bytes("b")])
    #expect(node.property("a")?.value == [0, 0, 0, 2, 0, 0, 0, 3])
    node.set("c", u64: 0x1_0000_0002)
    #expect(node.property("c")?.u64 == 0x1_0000_0002)
    node.setEmpty("d")
    #expect(node.property("d")?.value == [])
    node.set(named: bytes("e"), strings: [bytes("p"), bytes("q")])
    #expect(node.property(named: bytes("e"))?.value == bytes("p\0q\0"))
    #expect(node.remove(property: "b"))
    #expect(!node.remove(property: bytes("b")))
    #expect(node.property("b") == nil)

    #expect(dtCells([0x1_2345_6789, 7], cells: 2) == [1, 0x2345_6789, 0, 7])
    #expect(dtCells([0x1_2345_6789], cells: 1) == [0x2345_6789])
    #expect(dtCells([5], cells: 3) == [0, 0, 5])
    node.setReg([(address: 0x1000, size: 0x20)], addressCells: 1, sizeCells: 1)
    #expect(node.property("reg")?.cells == [0x1000, 0x20])

    let child = node.addChild(DTNode("leaf@1"))
    #expect(node.child("leaf") === child)
    #expect(node.removeChild("leaf"))
    #expect(!node.removeChild(named: bytes("leaf@1")))
    #expect(node.children.isEmpty)
}

// MARK: Wire format

@Test func deviceTreeRoundTrip() throws {
    let root = sampleTree()
    let reservations: [(address: UInt64, size: UInt64)] = [(0x4800_0000, 0x10_0000), (0, 0), (0x1_0000_0000, 0x2000)]
    let blob = FlattenedDeviceTree.serialize(root, reservations: reservations, bootCPU: 1)

    let parsed = try parse(blob)
    #expect(sameTree(root, parsed))

    let header = try blob.withUnsafeBytes { try FlattenedDeviceTree.header($0) }
    #expect(header.version == 17 && header.lastCompatibleVersion == 16)
    #expect(header.bootCPU == 1)
    #expect(header.totalSize == blob.count)
    #expect(try blob.withUnsafeBytes { try FlattenedDeviceTree.totalSize($0) } == blob.count)
    #expect(header.reservationsOffset % 8 == 0 && header.structOffset % 4 == 0)

    let parsedReservations = try blob.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }
    #expect(parsedReservations.map(\.address) == [0x4800_0000, 0x1_0000_0000])
    #expect(parsedReservations.map(\.size) == [0x10_0000, 0x2000])

    // Each distinct name stored once.
    var names: [[UInt8]] = []
    _ = root.all { node in
        for p in node.properties where !names.contains(p.name) { names.append(p.name) }
        return false
    }
    #expect(header.stringsSize == names.reduce(0) { $0 + $1.count + 1 })

    // Parsing works on a buffer larger than the blob (the hypervisor maps whole pages).
    let padded = blob + [UInt8](repeating: 0xff, count: 100)
    #expect(sameTree(root, try parse(padded)))
    // And at an odd address.
    let shifted = [0] + blob
    let fromShifted = try shifted.withUnsafeBytes { try FlattenedDeviceTree.parse(UnsafeRawBufferPointer(rebasing: $0[1...])) }
    #expect(sameTree(root, fromShifted))
}

@Test func deviceTreeEmptyRoot() throws {
    let blob = FlattenedDeviceTree.serialize(DTNode(name: []))
    let parsed = try parse(blob)
    #expect(parsed.name.isEmpty && parsed.properties.isEmpty && parsed.children.isEmpty)
    #expect(try blob.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }.isEmpty)
}

@Test func deviceTreeSkipsNops() throws {
    // NOPs are what a tool leaves behind after deleting in place; they may appear between any tokens.
    let root = DTNode(name: [])
    root.set("a", u32: 1)
    root.addChild(DTNode("c"))
    var blob = FlattenedDeviceTree.serialize(root)
    let structOffset = Int(get32(blob, at: 8))
    let nop: [UInt8] = [0, 0, 0, 4]
    blob.insert(contentsOf: nop + nop, at: structOffset)
    put32(get32(blob, at: 4) + 8, in: &blob, at: 4)  // totalsize
    put32(get32(blob, at: 12) + 8, in: &blob, at: 12)  // strings offset
    put32(get32(blob, at: 36) + 8, in: &blob, at: 36)  // struct size
    #expect(sameTree(root, try parse(blob)))
}

// MARK: Malformed blobs

@Test func deviceTreeRejectsMalformedHeaders() {
    let good = FlattenedDeviceTree.serialize(sampleTree())

    #expect(parseError([]) == .truncated)
    #expect(parseError([0xd0, 0x0d]) == .truncated)
    var badMagic = good
    badMagic[0] = 0xde
    #expect(parseError(badMagic) == .badMagic)
    #expect(parseError(Array(good.prefix(20))) == .truncated)
    #expect(parseError(Array(good.prefix(39))) == .truncated)
    #expect(parseError(Array(good.dropLast())) == .truncated)

    var oldVersion = good
    put32(15, in: &oldVersion, at: 20)
    #expect(parseError(oldVersion) == .badVersion)
    var futureOnly = good
    put32(18, in: &futureOnly, at: 24)
    #expect(parseError(futureOnly) == .badVersion)

    var tinyTotal = good
    put32(8, in: &tinyTotal, at: 4)
    #expect(parseError(tinyTotal) == .badStructure(offset: 4))

    var structPastEnd = good
    put32(UInt32(good.count + 4), in: &structPastEnd, at: 8)
    #expect(parseError(structPastEnd) == .badStructure(offset: 8))
    var structInHeader = good
    put32(0, in: &structInHeader, at: 8)
    #expect(parseError(structInHeader) == .badStructure(offset: 8))
    var misaligned = good
    put32(get32(good, at: 8) + 2, in: &misaligned, at: 8)
    #expect(parseError(misaligned) == .badStructure(offset: 8))
    var structTooLong = good
    put32(UInt32(good.count) - get32(good, at: 8) + 4, in: &structTooLong, at: 36)
    #expect(parseError(structTooLong) == .badStructure(offset: 36))
    var stringsPastEnd = good
    put32(0xffff_fff0, in: &stringsPastEnd, at: 12)
    #expect(parseError(stringsPastEnd) == .badStructure(offset: 12))
    var stringsTooLong = good
    put32(get32(good, at: 32) + 1, in: &stringsTooLong, at: 32)
    #expect(parseError(stringsTooLong) == .badStructure(offset: 32))
    var reservationsPastEnd = good
    put32(0xffff_ffff, in: &reservationsPastEnd, at: 16)
    #expect(parseError(reservationsPastEnd) == .badStructure(offset: 16))
}

@Test func deviceTreeRejectsMalformedStructure() throws {
    let root = DTNode(name: [])
    root.set("abc", u32: 1)
    let good = FlattenedDeviceTree.serialize(root)
    // Layout: header 40, reservations 40..<56, struct 56: BEGIN_NODE, "" padded to 4, PROP len nameoff value,
    // END_NODE, END; then strings "abc\0".
    let s = Int(get32(good, at: 8))
    #expect(get32(good, at: s) == 1 && get32(good, at: s + 8) == 3)
    #expect(sameTree(root, try parse(good)))

    var unknownToken = good
    put32(7, in: &unknownToken, at: s)
    #expect(parseError(unknownToken) == .badStructure(offset: s))

    var propertyBeforeNode = good
    put32(3, in: &propertyBeforeNode, at: s)
    #expect(parseError(propertyBeforeNode) == .badStructure(offset: s))

    var hugeLength = good
    put32(0xffff_fff0, in: &hugeLength, at: s + 12)
    #expect(parseError(hugeLength) == .badStructure(offset: s + 8))

    var badNameOffset = good
    put32(100, in: &badNameOffset, at: s + 16)
    #expect(parseError(badNameOffset) == .badString(offset: Int(get32(good, at: 12)) + 100))

    var unterminatedString = good
    unterminatedString[unterminatedString.count - 1] = UInt8(ascii: "d")
    #expect(parseError(unterminatedString) == .badString(offset: Int(get32(good, at: 12))))

    var extraEndNode = good
    put32(2, in: &extraEndNode, at: s + 28)  // END becomes a second END_NODE
    #expect(parseError(extraEndNode) == .badStructure(offset: s + 28))

    var missingEndNode = good
    put32(4, in: &missingEndNode, at: s + 24)  // END_NODE becomes NOP: END arrives with the root open
    #expect(parseError(missingEndNode) == .badStructure(offset: s + 28))

    var noEndToken = good
    put32(get32(good, at: 36) - 4, in: &noEndToken, at: 36)  // struct block stops before END
    #expect(parseError(noEndToken) == .badStructure(offset: s + 28))

    var secondRoot = good
    put32(1, in: &secondRoot, at: s + 28)  // a BEGIN_NODE after the root closed
    #expect(parseError(secondRoot) == .badStructure(offset: s + 28))

    // A node name that runs to the end of the structure block.
    var unterminatedName = [UInt8](repeating: 0, count: 40)
    put32(0xd00d_feed, in: &unterminatedName, at: 0)
    put32(17, in: &unterminatedName, at: 20)
    put32(16, in: &unterminatedName, at: 24)
    let nameBytes = bytes("abcdefgh")
    unterminatedName += [UInt8](repeating: 0, count: 16)  // reservation terminator at 40
    unterminatedName += [0, 0, 0, 1] + nameBytes  // struct at 56
    put32(UInt32(unterminatedName.count), in: &unterminatedName, at: 4)
    put32(56, in: &unterminatedName, at: 8)
    put32(UInt32(unterminatedName.count), in: &unterminatedName, at: 12)
    put32(40, in: &unterminatedName, at: 16)
    put32(0, in: &unterminatedName, at: 32)
    put32(12, in: &unterminatedName, at: 36)
    #expect(parseError(unterminatedName) == .badStructure(offset: 60))

    // Reservation map that never terminates.
    var endless = good
    for i in 40..<56 { endless[i] = 0xff }
    #expect(throws: DeviceTreeError.self) {
        try endless.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }
    }
}

@Test func deviceTreeRejectsDeepNesting() {
    var node = DTNode("leaf")
    for _ in 0..<FlattenedDeviceTree.maxDepth { node = DTNode(name: bytes("n"), children: [node]) }
    let blob = FlattenedDeviceTree.serialize(node)
    guard case .badStructure = parseError(blob) else {
        Issue.record("deep tree accepted")
        return
    }
}

/// Corrupted blobs must throw or parse, never trap: a trap here is a crash of the whole test process.
@Test func deviceTreeSurvivesCorruption() {
    let good = FlattenedDeviceTree.serialize(sampleTree(), reservations: [(0x1000, 0x1000)])
    // Every truncation, with the header claiming the short size so the parser reaches the blocks.
    for length in 0..<good.count {
        var short = Array(good.prefix(length))
        if length >= 8 { put32(UInt32(length), in: &short, at: 4) }
        _ = parseError(short)
        _ = short.withUnsafeBytes { try? FlattenedDeviceTree.memoryReservations($0) }
    }
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15
    func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    for _ in 0..<3000 {
        var bad = good
        for _ in 0..<(1 + Int(next() % 4)) {
            let at = Int(next() % UInt64(bad.count))
            // Small values make plausible tokens and lengths; random ones exercise the bounds.
            bad[at] = next() % 2 == 0 ? UInt8(next() % 10) : UInt8(truncatingIfNeeded: next())
        }
        _ = parseError(bad)
        _ = bad.withUnsafeBytes { try? FlattenedDeviceTree.memoryReservations($0) }
    }
}

// MARK: Real blobs from dtc and QEMU

private let dtcPath = "/usr/bin/dtc"
private let qemuPath = "/usr/bin/qemu-system-aarch64"

private struct Scratch {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("tern-fdt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Runs a tool with output to a log file (a pipe could fill and stall it) and a timeout, so a hung QEMU
/// fails the test instead of hanging it.
private func run(_ tool: String, _ arguments: [String], log: String) throws -> Int32 {
    _ = FileManager.default.createFile(atPath: log, contents: nil)
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    defer { try? output.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let deadline = Date().addingTimeInterval(60)
    while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        return -1
    }
    return process.terminationStatus
}

private func readLog(_ path: String) -> String {
    (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
}

/// dtc's own decompilation is the referee: if our re-serialization decompiles to the same source text as
/// the original, nothing that dtc can see was lost or changed.
private func expectDtcAgrees(original: String, reserialized: [UInt8], scratch: Scratch) throws {
    let ours = scratch.path("ours.dtb")
    try Data(reserialized).write(to: URL(fileURLWithPath: ours))
    let log = scratch.path("dtc.log")
    let oursStatus = try run(dtcPath, ["-q", "-I", "dtb", "-O", "dts", "-o", scratch.path("ours.dts"), ours], log: log)
    #expect(oursStatus == 0, "dtc rejected our blob: \(readLog(log))")
    let originalStatus = try run(dtcPath, ["-q", "-I", "dtb", "-O", "dts", "-o", scratch.path("original.dts"), original], log: log)
    #expect(originalStatus == 0)
    let originalText = readLog(scratch.path("original.dts"))
    #expect(originalText.contains("/dts-v1/;"))
    #expect(readLog(scratch.path("ours.dts")) == originalText)
}

private let sampleSource = """
    /dts-v1/;
    /memreserve/ 0x48000000 0x100000;
    / {
        #address-cells = <2>;
        #size-cells = <1>;
        compatible = "tern,dtc-test";
        interrupt-parent = <&gic>;

        chosen { bootargs = "console=hvc0"; };

        memory@80000000 {
            device_type = "memory";
            reg = <0x0 0x80000000 0x40000000>, <0x8 0x0 0x10000000>;
        };

        gic: interrupt-controller@8000000 {
            compatible = "arm,gic-400", "arm,cortex-a15-gic";
            #interrupt-cells = <3>;
            interrupt-controller;
            reg = <0x0 0x8000000 0x1000>, <0x0 0x8010000 0x1000>;
        };

        soc {
            #address-cells = <1>;
            #size-cells = <1>;
            ranges;
            serial@9000000 {
                compatible = "arm,pl011", "arm,primecell";
                reg = <0x9000000 0x1000>;
                interrupts = <0 1 4>;
                status = "okay";
            };
            serial@9001000 {
                compatible = "arm,pl011", "arm,primecell";
                reg = <0x9001000 0x1000>;
                status = "disabled";
            };
        };
    };
    """

@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: dtcPath)))
func deviceTreeParsesDtcOutput() throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let source = scratch.path("sample.dts")
    let dtb = scratch.path("sample.dtb")
    try sampleSource.write(toFile: source, atomically: true, encoding: .utf8)
    let log = scratch.path("dtc.log")
    let status = try run(dtcPath, ["-q", "-I", "dts", "-O", "dtb", "-o", dtb, source], log: log)
    try #require(status == 0, "dtc failed: \(readLog(log))")

    let blob = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dtb)))
    let root = try parse(blob)
    #expect(root.isCompatible("tern,dtc-test"))
    #expect(root.node(atPath: "/chosen")?.property("bootargs")?.string == bytes("console=hvc0"))

    let memory = try #require(root.node(atPath: "/memory"))
    let banks = memory.reg(in: root)
    #expect(banks.map(\.address) == [0x8000_0000, 0x8_0000_0000])
    #expect(banks.map(\.size) == [0x4000_0000, 0x1000_0000])

    let gicHandle = try #require(root.property("interrupt-parent")?.u32)
    let gic = try #require(root.find(phandle: gicHandle))
    #expect(gic.name == bytes("interrupt-controller@8000000"))
    #expect(gic.isCompatible("arm,cortex-a15-gic"))
    #expect(gic.property("interrupt-controller")?.value == [])
    #expect(gic.reg(in: root).map(\.address) == [0x800_0000, 0x801_0000])

    let serials = root.findCompatible("arm,pl011")
    #expect(serials.count == 2)
    let soc = try #require(root.child("soc"))
    #expect(serials.map { $0.reg(in: soc).first?.address } == [0x900_0000, 0x900_1000])
    #expect(serials.map(\.isEnabled) == [true, false])
    #expect(root.parent(of: serials[0]) === soc)

    let reservations = try blob.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }
    #expect(reservations.map(\.address) == [0x4800_0000] && reservations.map(\.size) == [0x10_0000])

    let again = FlattenedDeviceTree.serialize(root, reservations: reservations)
    #expect(sameTree(root, try parse(again)))
    try expectDtcAgrees(original: dtb, reserialized: again, scratch: scratch)
}

@Test(.enabled(if: FileManager.default.isExecutableFile(atPath: qemuPath)))
func deviceTreeParsesQemuVirt() throws {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let dtb = scratch.path("virt.dtb")
    let log = scratch.path("qemu.log")
    let status = try run(qemuPath, [
        "-M", "virt,virtualization=on,gic-version=3,dumpdtb=\(dtb)", "-cpu", "cortex-a57",
        "-smp", "2", "-m", "1024", "-nographic",
        // The default NIC wants a boot ROM that distribution packages may omit; the DTB does not depend on it.
        "-nic", "none",
    ], log: log)
    try #require(status == 0, "qemu failed: \(readLog(log))")

    let blob = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dtb)))
    #expect(try blob.withUnsafeBytes { try FlattenedDeviceTree.totalSize($0) } <= blob.count)
    let root = try parse(blob)

    let memory = try #require(root.node(atPath: "/memory"))
    #expect(memory.property("device_type")?.string == bytes("memory"))
    let banks = memory.reg(in: root)
    #expect(banks.count == 1)
    #expect(banks.first?.address == 0x4000_0000 && banks.first?.size == 0x4000_0000)

    let cpus = try #require(root.node(atPath: "/cpus"))
    let cpuNodes = cpus.children.filter { $0.baseName == bytes("cpu") }
    #expect(cpuNodes.count == 2)
    #expect(cpuNodes.compactMap { $0.reg(in: cpus).first?.address } == [0, 1])

    let uart = try #require(root.findCompatible("arm,pl011").first)
    let uartParent = try #require(root.parent(of: uart))
    #expect(uart.reg(in: uartParent).first?.address == 0x900_0000)

    let gic = try #require(root.findCompatible("arm,gic-v3").first)
    #expect(gic.property("interrupt-controller") != nil)
    #expect(root.property("interrupt-parent")?.u32 == gic.phandle)

    let psci = try #require(root.findCompatible("arm,psci-1.0").first ?? root.child("psci"))
    let method = psci.property("method")?.string
    #expect(method == bytes("hvc") || method == bytes("smc"))

    let reservations = try blob.withUnsafeBytes { try FlattenedDeviceTree.memoryReservations($0) }
    let header = try blob.withUnsafeBytes { try FlattenedDeviceTree.header($0) }
    let again = FlattenedDeviceTree.serialize(root, reservations: reservations, bootCPU: header.bootCPU)
    #expect(sameTree(root, try parse(again)))
    try expectDtcAgrees(original: dtb, reserialized: again, scratch: scratch)
}
