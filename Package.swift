// swift-tools-version: 6.1
// One package, two faces. The host face (`swift build`, `swift test`) is the `tern` CLI, the pure core
// and its tests. The bare-metal face is selected by TERN_METAL=1 (set by `tern build`, together with the
// aarch64-none-none-elf triple and metal/toolset.json): the hypervisor image and the guest images.
// The core is the one target both faces compile.
import PackageDescription
import Foundation

let metal = ProcessInfo.processInfo.environment["TERN_METAL"] != nil
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

func linkerScript(_ name: String) -> [LinkerSetting] {
    [.unsafeFlags(["-Xlinker", "-T", "-Xlinker", "\(root)/metal/\(name).ld"])]
}

/// TERN_ASAN=1 (make test's second pass) builds the core with the address sanitizer, and only the core:
/// the test framework's own code is not ours to check.
let asan = ProcessInfo.processInfo.environment["TERN_ASAN"] != nil && !metal
let core = Target.target(name: "TernCore", swiftSettings: asan ? [.unsafeFlags(["-sanitize=address"])] : [],
                         linkerSettings: asan ? [.unsafeFlags(["-sanitize=address"])] : [])

// The toolchain's Embedded Unicode tables, found from the swiftc that runs this build.
let toolchain = ProcessInfo.processInfo.environment["TERN_TOOLCHAIN"] ?? "/opt/swift/usr"
let unicodeTables: [LinkerSetting] = [.unsafeFlags([
    "-Xlinker", "\(toolchain)/lib/swift/embedded/aarch64-none-none-elf/libswiftUnicodeDataTables.a"])]

let guests = ["hello", "spin", "oob", "hostile", "smp", "idle", "bench", "clock", "grant", "watchdog", "pingpong", "timers", "hog", "neighbours", "fuzz", "canary", "exhaust"]
// Globals in the bare-metal targets are per-CPU-protected by hand (locks, one writer at boot).
let swift5: [SwiftSetting] = [.swiftLanguageMode(.v5)]
/// The hypervisor (and the core it is built from) is optimized for speed, release's -O: it inlines the
/// register accessors and keeps the size outliner's extra calls off the trap path; the image stays far
/// under its 250 KB budget. Its shared state is guarded by explicit locks (the scheduler's, each
/// domain's), so the run-time exclusivity checks on globals and class properties, a call each on every
/// trap, are left out; the compile-time ones stay. Guests are optimized for size.
let hotPath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
let small: [SwiftSetting] = [.unsafeFlags(["-Osize"])]

let metalTargets: [Target] = [
    core,
    .target(name: "BareMetalSupport"),
    .target(name: "TernArchAsm", dependencies: ["BareMetalSupport"]),
    .target(name: "TernArch", dependencies: ["TernArchAsm", "BareMetalSupport", "TernCore"], swiftSettings: swift5),
    .executableTarget(name: "Hypervisor", dependencies: ["TernCore", "TernArch", "TernArchAsm", "BareMetalSupport"],
                      swiftSettings: swift5 + hotPath, linkerSettings: linkerScript("hypervisor")),
    .target(name: "GuestKitAsm", dependencies: ["BareMetalSupport"]),
    .target(name: "GuestKit", dependencies: ["GuestKitAsm", "BareMetalSupport", "TernCore"], swiftSettings: swift5 + small),
] + guests.map { guest in
    .executableTarget(name: "guest-\(guest)", dependencies: ["GuestKit"], path: "Guests/\(guest)",
                      // Guests may use String freely; its Unicode tables cost them nothing that matters.
                      swiftSettings: swift5 + small, linkerSettings: linkerScript("guest") + unicodeTables)
}

let hostTargets: [Target] = [
    core,
    .target(name: "TernTool", dependencies: ["TernCore"]),
    .executableTarget(name: "tern", dependencies: [
        "TernTool", "TernCore", .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]),
    .testTarget(name: "TernCoreTests", dependencies: ["TernCore"]),
    .testTarget(name: "TernToolTests", dependencies: ["TernTool", "TernCore"]),
    .testTarget(name: "IntegrationTests", dependencies: ["TernTool", "TernCore"]),
]

let package = Package(
    name: "Tern",
    products: metal
        ? [.executable(name: "hypervisor", targets: ["Hypervisor"])]
            + guests.map { .executable(name: "guest-\($0)", targets: ["guest-\($0)"]) }
        : [.executable(name: "tern", targets: ["tern"])],
    dependencies: metal ? [] : [.package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")],
    targets: metal ? metalTargets : hostTargets
)
