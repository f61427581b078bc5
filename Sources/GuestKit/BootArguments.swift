// The guest's command line (`extra` in its config) from /chosen/bootargs, as key=value words.
import TernCore

public struct BootArguments {
    public let words: [[UInt8]]

    public init(deviceTree: UInt64) {
        let size = Int(UInt32(bigEndian: UnsafeRawPointer(bitPattern: UInt(deviceTree))!.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
        var args: [UInt8] = []
        if size <= 0x20_0000,
           let root = try? FlattenedDeviceTree.parse(UnsafeRawBufferPointer(start: UnsafeRawPointer(bitPattern: UInt(deviceTree)), count: size)) {
            args = root.node(atPath: "/chosen")?.property("bootargs")?.string ?? []
            memoryBytes = root.node(atPath: "/memory")?.reg(in: root).first?.size ?? 0
            restarts = Int(root.node(atPath: "/chosen")?.property("tern,restarts")?.u32 ?? 0)
        } else {
            memoryBytes = 0
            restarts = 0
        }
        words = args.split(separator: UInt8(ascii: " ")).map { Array($0) }
    }

    /// Guest RAM size from the device tree.
    public let memoryBytes: UInt64
    /// How many times the hypervisor restarted this domain (/chosen/tern,restarts; 0 on Xen).
    public let restarts: Int

    public func value(_ key: StaticString) -> [UInt8]? {
        let k = utf8Bytes(key) + [UInt8(ascii: "=")]
        for w in words where w.count >= k.count && Array(w.prefix(k.count)) == k {
            return Array(w.dropFirst(k.count))
        }
        return nil
    }

    public func integer(_ key: StaticString, default d: Int) -> Int {
        guard let v = value(key), !v.isEmpty else { return d }
        var n = 0
        for c in v {
            guard c >= 0x30 && c <= 0x39 else { return d }
            n = n * 10 + Int(c - 0x30)
        }
        return n
    }

    public func text(_ key: StaticString, default d: String) -> String {
        guard let v = value(key) else { return d }
        return String(decoding: v, as: UTF8.self)
    }
}
