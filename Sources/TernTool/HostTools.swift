import Foundation

/// Finds the external programs the toolstack drives. Looked up at use, not at start, so that `tern check`
/// works on a machine without QEMU or a Swift toolchain.
public enum HostTools {
    public static func onPath(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for folder in path.split(separator: ":") where !folder.isEmpty {
            let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    public static func swift() throws(TernToolError) -> URL {
        guard let swift = onPath("swift") else { throw .toolNotFound(name: "swift", searched: ["PATH"]) }
        return swift
    }

    public static func qemu() throws(TernToolError) -> URL {
        guard let qemu = onPath("qemu-system-aarch64") else {
            throw .toolNotFound(name: "qemu-system-aarch64", searched: ["PATH"])
        }
        return qemu
    }

    /// The toolchain's own objcopy understands the ELF the toolchain's linker wrote; a distribution's
    /// binutils objcopy may be built for the host architecture only.
    public static func objcopy() throws(TernToolError) -> URL {
        var candidates = ["/opt/swift/usr/bin/llvm-objcopy"]
        if let swift = onPath("swift") {
            candidates.append(swift.resolvingSymlinksInPath().deletingLastPathComponent()
                .appendingPathComponent("llvm-objcopy").path)
        }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            return URL(fileURLWithPath: candidate)
        }
        if let found = onPath("llvm-objcopy") { return found }
        throw .toolNotFound(name: "llvm-objcopy", searched: candidates + ["PATH"])
    }
}
