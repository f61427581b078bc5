import Foundation

/// Where things live in the Tern package. The bare-metal products have their own scratch folder so the
/// host build (`swift build`) and the metal build never invalidate each other's caches.
public struct PackageLayout: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// Walks up from `start` (default: the current directory) because the CLI may be run from any
    /// folder inside the package, and tests run with the package root as their working directory.
    public static func locate(from start: URL? = nil) throws(TernToolError) -> PackageLayout {
        let first = (start ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)).standardizedFileURL
        var folder = first
        while true {
            if isPackageRoot(folder) { return PackageLayout(root: folder) }
            let parent = folder.deletingLastPathComponent()
            if parent.path == folder.path { throw .packageRootNotFound(start: first.path) }
            folder = parent
        }
    }

    public static func isPackageRoot(_ folder: URL) -> Bool {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        return files.fileExists(atPath: folder.appendingPathComponent("Package.swift").path)
            && files.fileExists(atPath: folder.appendingPathComponent("Sources/Hypervisor").path, isDirectory: &isDirectory)
            && isDirectory.boolValue
    }

    public var metalScratch: URL { root.appendingPathComponent(".build-metal") }
    public var imagesDirectory: URL { metalScratch.appendingPathComponent("images") }
    public var toolset: URL { root.appendingPathComponent("metal/toolset.json") }
    public var hypervisorImage: URL { imagesDirectory.appendingPathComponent("hypervisor.bin") }

    public func guestImage(_ guest: String) -> URL {
        imagesDirectory.appendingPathComponent("guest-\(guest).img")
    }

    /// The built-in guests are whatever folders Guests/ holds, so adding a guest needs no change here.
    public func guestNames() -> [String] {
        let guests = root.appendingPathComponent("Guests")
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: guests.path)) ?? []
        return entries.filter { entry in
            var isDirectory: ObjCBool = false
            return !entry.hasPrefix(".")
                && FileManager.default.fileExists(atPath: guests.appendingPathComponent(entry).path, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }.sorted()
    }
}
