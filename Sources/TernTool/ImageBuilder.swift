import Foundation

/// The raw images QEMU boots: the hypervisor, and the built-in guests by name ("hello" for
/// guest-hello).
public struct BuiltImages: Sendable {
    public var hypervisor: URL
    public var guests: [String: URL]

    public init(hypervisor: URL, guests: [String: URL]) {
        self.hypervisor = hypervisor
        self.guests = guests
    }

    public var hypervisorSize: Int { fileSize(hypervisor) ?? 0 }

    /// Bytes; 0 for an image that is not there.
    public func size(of image: URL) -> Int { fileSize(image) ?? 0 }
}

/// Builds the bare-metal face of the package and turns its ELF executables into raw images.
public struct ImageBuilder: Sendable {
    public let layout: PackageLayout
    /// Progress and the image sizes; the CLI prints them, tests may drop them.
    public var log: @Sendable (String) -> Void

    /// How much of a failed build's output goes into the error: the compiler's first error is near the
    /// end, and the whole log can run to thousands of lines.
    static let failureOutputLines = 60

    public init(layout: PackageLayout, log: @escaping @Sendable (String) -> Void = { print($0) }) {
        self.layout = layout
        self.log = log
    }

    public static let hypervisorProduct = "hypervisor"

    public static func guestProduct(_ guest: String) -> String { "guest-\(guest)" }

    /// The hypervisor and every guest under Guests/.
    public func buildAll() throws(TernToolError) -> BuiltImages {
        try build(guests: layout.guestNames())
    }

    /// The hypervisor and just `guests`, so a run that needs one guest is not held up by another that
    /// does not compile.
    public func build(guests: [String]) throws(TernToolError) -> BuiltImages {
        let swift = try HostTools.swift()
        let objcopy = try HostTools.objcopy()
        do {
            try FileManager.default.createDirectory(at: layout.imagesDirectory, withIntermediateDirectories: true)
        } catch {
            throw .io("cannot create \(layout.imagesDirectory.path): \(error.localizedDescription)")
        }

        let products = [Self.hypervisorProduct] + guests.map(Self.guestProduct)
        log("building \(products.joined(separator: ", ")) (release, aarch64-none-none-elf)")
        try buildProduct(Self.hypervisorProduct, to: layout.hypervisorImage, swift: swift, objcopy: objcopy)
        let size = fileSize(layout.hypervisorImage) ?? 0
        log("hypervisor image: \(size) bytes (\((size + 1023) / 1024) KiB)")

        var images: [String: URL] = [:]
        for guest in guests {
            let image = layout.guestImage(guest)
            try buildProduct(Self.guestProduct(guest), to: image, swift: swift, objcopy: objcopy)
            images[guest] = image
        }
        return BuiltImages(hypervisor: layout.hypervisorImage, guests: images)
    }

    /// One product per `swift build` call: SwiftPM builds either one product or all of them, and "all"
    /// would make every guest's failure everyone's.
    private func buildProduct(_ product: String, to image: URL, swift: URL, objcopy: URL) throws(TernToolError) {
        var environment = ProcessInfo.processInfo.environment
        environment["TERN_METAL"] = "1"
        let build = try Subprocess.capture(swift, [
            "build", "-c", "release", "--triple", "aarch64-none-none-elf",
            "--toolset", layout.toolset.path, "--scratch-path", layout.metalScratch.path, "--product", product,
        ], in: layout.root, environment: environment)
        guard build.status == 0 else {
            throw .buildFailed(product: product, status: build.status, output: Self.tail(build.output))
        }

        let elf = layout.metalScratch.appendingPathComponent("release/\(product)")
        guard FileManager.default.fileExists(atPath: elf.path) else {
            throw .buildFailed(product: product, status: 0, output: "swift build succeeded but \(elf.path) is missing")
        }
        let copy = try Subprocess.capture(objcopy, ["-O", "binary", elf.path, image.path])
        guard copy.status == 0 else {
            throw .commandFailed(command: "\(objcopy.lastPathComponent) -O binary \(elf.path)",
                                 status: copy.status, output: copy.output)
        }
    }

    static func tail(_ output: String) -> String {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.suffix(failureOutputLines).joined(separator: "\n")
    }
}

public func fileSize(_ url: URL) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue
}
