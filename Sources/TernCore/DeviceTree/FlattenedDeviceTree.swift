// The flattened device tree (DTB) is the wire format of the device tree: a header, a memory reservation
// map, a structure block of big-endian tokens, and a strings block holding property names. Firmware hands
// the hypervisor one in raw memory and the hypervisor hands each guest a new one, so both directions
// live here.
//
// To the hypervisor the blob is just memory at an address someone passed in a register: a wrong address
// or a corrupted image must become an error, not a fault. So every read is checked against the buffer
// and against the header's own sizes, and error offsets are from the start of the blob so they can be
// found in a hex dump.

public enum DeviceTreeError: Error, Equatable, Sendable {
    /// The first word is not 0xd00dfeed: most likely not a device tree at all.
    case badMagic
    /// The buffer is shorter than the header, or than the total size the header claims.
    case truncated
    /// Older than version 16 (a different node-name scheme), or not readable by a version-17 reader.
    case badVersion
    /// The header's blocks do not fit, or the token stream is malformed, at this offset.
    case badStructure(offset: Int)
    /// A property name lies outside the strings block or is never NUL-terminated.
    case badString(offset: Int)
}

/// The header fields, decoded and checked: every block lies after the header and inside `totalSize`.
public struct FDTHeader: Sendable {
    public var totalSize: Int
    public var structOffset: Int
    public var structSize: Int
    public var stringsOffset: Int
    public var stringsSize: Int
    public var reservationsOffset: Int
    public var version: UInt32
    public var lastCompatibleVersion: UInt32
    public var bootCPU: UInt32
}

public enum FlattenedDeviceTree {
    static let magic: UInt32 = 0xd00d_feed
    static let writtenVersion: UInt32 = 17
    static let writtenLastCompatibleVersion: UInt32 = 16
    static let headerSizeV17 = 40
    static let headerSizeV16 = 36
    static let reservationEntrySize = 16

    /// Linux refuses deeper trees too; bounding depth bounds the recursion in DTNode's traversals.
    static let maxDepth = 64

    enum Token: UInt32 {
        case beginNode = 1
        case endNode = 2
        case property = 3
        case nop = 4
        case end = 9
    }

    // MARK: Header

    public static func header(_ blob: UnsafeRawBufferPointer) throws(DeviceTreeError) -> FDTHeader {
        guard blob.count >= 4 else { throw .truncated }
        guard load32(blob, 0) == magic else { throw .badMagic }
        guard blob.count >= 28 else { throw .truncated }
        let version = load32(blob, 20)
        let lastCompatibleVersion = load32(blob, 24)
        guard version >= 16, lastCompatibleVersion <= writtenVersion else { throw .badVersion }
        // Version 16 lacks size_dt_struct; the structure block then runs to the end of the blob.
        let headerSize = version >= 17 ? headerSizeV17 : headerSizeV16
        guard blob.count >= headerSize else { throw .truncated }

        let totalSize = Int(load32(blob, 4))
        guard totalSize >= headerSize else { throw .badStructure(offset: 4) }
        guard totalSize <= blob.count else { throw .truncated }

        let structOffset = Int(load32(blob, 8))
        let stringsOffset = Int(load32(blob, 12))
        let reservationsOffset = Int(load32(blob, 16))
        let stringsSize = Int(load32(blob, 32))
        // Tokens are aligned relative to the blob, so a misaligned block would misplace every token.
        guard structOffset >= headerSize, structOffset <= totalSize, structOffset % 4 == 0 else {
            throw .badStructure(offset: 8)
        }
        let structSize = version >= 17 ? Int(load32(blob, 36)) : totalSize - structOffset
        guard structSize <= totalSize - structOffset else { throw .badStructure(offset: 36) }
        guard stringsOffset >= headerSize, stringsOffset <= totalSize else { throw .badStructure(offset: 12) }
        guard stringsSize <= totalSize - stringsOffset else { throw .badStructure(offset: 32) }
        guard reservationsOffset >= headerSize, reservationsOffset <= totalSize else {
            throw .badStructure(offset: 16)
        }

        return FDTHeader(
            totalSize: totalSize, structOffset: structOffset, structSize: structSize,
            stringsOffset: stringsOffset, stringsSize: stringsSize, reservationsOffset: reservationsOffset,
            version: version, lastCompatibleVersion: lastCompatibleVersion, bootCPU: load32(blob, 28))
    }

    /// What to map or copy before parsing when all one has is a pointer to the start of the blob.
    public static func totalSize(_ blob: UnsafeRawBufferPointer) throws(DeviceTreeError) -> Int {
        try header(blob).totalSize
    }

    // MARK: Reading

    /// Entries up to the (0, 0) terminator, which must appear before the end of the blob.
    public static func memoryReservations(
        _ blob: UnsafeRawBufferPointer
    ) throws(DeviceTreeError) -> [(address: UInt64, size: UInt64)] {
        let header = try header(blob)
        var result: [(address: UInt64, size: UInt64)] = []
        var offset = header.reservationsOffset
        while true {
            guard offset <= header.totalSize - reservationEntrySize else { throw .badStructure(offset: offset) }
            let address = load64(blob, offset)
            let size = load64(blob, offset + 8)
            if address == 0 && size == 0 { return result }
            result.append((address: address, size: size))
            offset += reservationEntrySize
        }
    }

    /// Builds the whole tree. Properties may appear after child nodes (the specification forbids it, but
    /// nothing is lost by accepting it); everything else off-specification throws.
    public static func parse(_ blob: UnsafeRawBufferPointer) throws(DeviceTreeError) -> DTNode {
        let header = try header(blob)
        let end = header.structOffset + header.structSize
        var cursor = header.structOffset
        var root: DTNode? = nil
        var open: [DTNode] = []

        while true {
            let tokenOffset = cursor
            guard cursor <= end - 4 else { throw .badStructure(offset: cursor) }
            let word = load32(blob, cursor)
            cursor += 4
            guard let token = Token(rawValue: word) else { throw .badStructure(offset: tokenOffset) }

            switch token {
            case .beginNode:
                // A second top-level node would have nowhere to go.
                guard root == nil || !open.isEmpty, open.count < maxDepth else {
                    throw .badStructure(offset: tokenOffset)
                }
                let name = try terminatedBytes(blob, from: cursor, end: end, error: .badStructure(offset: cursor))
                cursor = alignUp4(cursor + name.count + 1)
                let node = DTNode(name: name)
                if let parent = open.last { parent.children.append(node) } else { root = node }
                open.append(node)

            case .endNode:
                guard open.popLast() != nil else { throw .badStructure(offset: tokenOffset) }

            case .property:
                guard let node = open.last, cursor <= end - 8 else { throw .badStructure(offset: tokenOffset) }
                let length = Int(load32(blob, cursor))
                let nameOffset = Int(load32(blob, cursor + 4))
                cursor += 8
                guard length <= end - cursor else { throw .badStructure(offset: tokenOffset) }
                let name = try propertyName(blob, header, nameOffset)
                let value = Array(UnsafeRawBufferPointer(rebasing: blob[cursor..<(cursor + length)]))
                node.properties.append(DTProperty(name: name, value: value))
                cursor = alignUp4(cursor + length)

            case .nop:
                continue

            case .end:
                guard let root, open.isEmpty else { throw .badStructure(offset: tokenOffset) }
                return root
            }
        }
    }

    private static func propertyName(
        _ blob: UnsafeRawBufferPointer, _ header: FDTHeader, _ nameOffset: Int
    ) throws(DeviceTreeError) -> [UInt8] {
        let start = header.stringsOffset + nameOffset
        guard nameOffset < header.stringsSize else { throw .badString(offset: start) }
        return try terminatedBytes(
            blob, from: start, end: header.stringsOffset + header.stringsSize, error: .badString(offset: start))
    }

    /// The bytes before the first NUL in [start, end), or `error` if there is none.
    private static func terminatedBytes(
        _ blob: UnsafeRawBufferPointer, from start: Int, end: Int, error: DeviceTreeError
    ) throws(DeviceTreeError) -> [UInt8] {
        var i = start
        while i < end {
            if blob[i] == 0 { return Array(UnsafeRawBufferPointer(rebasing: blob[start..<i])) }
            i += 1
        }
        throw error
    }

    // MARK: Writing

    /// Lays the blob out the way dtc does: header, reservations, structure, strings. Property names are
    /// stored once each. A reservation of size 0 is dropped, since (0, 0) would read as the terminator and
    /// an empty range reserves nothing anyway.
    public static func serialize(
        _ root: DTNode, reservations: [(address: UInt64, size: UInt64)] = [], bootCPU: UInt32 = 0
    ) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: headerSizeV17)

        let reservationsOffset = out.count
        for reservation in reservations where reservation.size != 0 {
            appendBigEndian(reservation.address, to: &out)
            appendBigEndian(reservation.size, to: &out)
        }
        appendBigEndian(UInt64(0), to: &out)
        appendBigEndian(UInt64(0), to: &out)

        let structOffset = out.count
        var strings = StringTable()
        emit(root, into: &out, strings: &strings)
        appendBigEndian(Token.end.rawValue, to: &out)
        let structSize = out.count - structOffset

        let stringsOffset = out.count
        out += strings.bytes

        let fields: [UInt32] = [
            magic, UInt32(out.count), UInt32(structOffset), UInt32(stringsOffset), UInt32(reservationsOffset),
            writtenVersion, writtenLastCompatibleVersion, bootCPU, UInt32(strings.bytes.count), UInt32(structSize),
        ]
        for (i, field) in fields.enumerated() { store32(field, in: &out, at: i * 4) }
        return out
    }

    private static func emit(_ node: DTNode, into out: inout [UInt8], strings: inout StringTable) {
        appendBigEndian(Token.beginNode.rawValue, to: &out)
        out += node.name
        out.append(0)
        padTo4(&out)
        for property in node.properties {
            appendBigEndian(Token.property.rawValue, to: &out)
            appendBigEndian(UInt32(property.value.count), to: &out)
            appendBigEndian(strings.offset(of: property.name), to: &out)
            out += property.value
            padTo4(&out)
        }
        for child in node.children { emit(child, into: &out, strings: &strings) }
        appendBigEndian(Token.endNode.rawValue, to: &out)
    }

    /// A linear search is fine: a real tree has a few dozen distinct property names.
    private struct StringTable {
        var bytes: [UInt8] = []
        var entries: [(name: [UInt8], offset: UInt32)] = []

        mutating func offset(of name: [UInt8]) -> UInt32 {
            if let entry = entries.first(where: { $0.name == name }) { return entry.offset }
            let offset = UInt32(bytes.count)
            entries.append((name: name, offset: offset))
            bytes += name
            bytes.append(0)
            return offset
        }
    }

    // MARK: Bytes

    /// Callers check bounds first. Unaligned loads because nothing guarantees where the blob was put.
    private static func load32(_ blob: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: blob.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    private static func load64(_ blob: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(bigEndian: blob.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    private static func store32(_ value: UInt32, in bytes: inout [UInt8], at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: value >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: value >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: value >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: value)
    }

    private static func alignUp4(_ offset: Int) -> Int { (offset + 3) & ~3 }

    private static func padTo4(_ bytes: inout [UInt8]) {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }
}

private func appendBigEndian(_ value: UInt64, to bytes: inout [UInt8]) {
    appendBigEndian(UInt32(truncatingIfNeeded: value >> 32), to: &bytes)
    appendBigEndian(UInt32(truncatingIfNeeded: value), to: &bytes)
}
