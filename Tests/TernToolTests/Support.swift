import Foundation
import Testing
import TernCore
@testable import TernTool

/// Tests run with the package root as the working directory; everything else is found from it.
let layout: PackageLayout = {
    do {
        return try PackageLayout.locate()
    } catch {
        fatalError("tests must run inside the Tern package: \(error)")
    }
}()

let examples = layout.root.appendingPathComponent("examples")

/// A fresh folder for files a test writes, removed by the caller's defer.
func scratchFolder() throws -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tern-tool-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

@discardableResult
func write(_ text: String, to folder: URL, as name: String) throws -> URL {
    let url = folder.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: url)
    return url
}

/// The configuration error `body` throws, or nil after recording a failure.
func configError(sourceLocation: SourceLocation = #_sourceLocation,
                 _ body: () throws -> Void) -> ConfigError? {
    do {
        try body()
        Issue.record("expected a config error", sourceLocation: sourceLocation)
    } catch TernToolError.config(let error) {
        return error
    } catch {
        Issue.record("expected a config error, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

func parseTree(_ blob: [UInt8]) throws -> DTNode {
    try blob.withUnsafeBytes { try FlattenedDeviceTree.parse($0) }
}

/// What QEMU's virt board dump looks like where it matters here: a /chosen with QEMU's own properties,
/// and a memory reservation to be carried over.
func fakeQEMUTree() -> [UInt8] {
    let root = DTNode(name: [])
    root.set("#address-cells", u32: 2)
    root.set("#size-cells", u32: 2)
    root.set("compatible", string: "linux,dummy-virt")
    let memory = root.addChild(DTNode("memory@40000000"))
    memory.set("device_type", string: "memory")
    memory.setReg([(0x4000_0000, 0x4000_0000)], addressCells: 2, sizeCells: 2)
    let chosen = root.addChild(DTNode("chosen"))
    chosen.set("stdout-path", string: "/pl011@9000000")
    chosen.set("kaslr-seed", cells: [0x1234_5678, 0x9abc_def0])
    return FlattenedDeviceTree.serialize(root, reservations: [(0x4800_0000, 0x1000)])
}

let qemuAvailable = HostTools.onPath("qemu-system-aarch64") != nil
