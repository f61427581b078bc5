// The device tree is how firmware tells an OS what hardware exists. The hypervisor reads the host's
// tree to find its own devices, and writes a tailored tree for each guest so the guest sees only what it
// was given. This file is the in-memory form both directions share; FlattenedDeviceTree.swift moves it
// to and from the DTB wire format.
//
// Names and values are [UInt8], never String: comparing Strings pulls Unicode tables into the bare-metal
// image, and device-tree text is plain ASCII anyway. Lookups by literal take StaticString, which costs
// nothing to compare against bytes.

/// One property: a name and an uninterpreted value. The accessors decode the common encodings; which one
/// applies is a matter of the binding, not of the blob, so none of them is authoritative.
public struct DTProperty: Equatable, Sendable {
    public var name: [UInt8]
    public var value: [UInt8]

    public init(name: [UInt8], value: [UInt8] = []) {
        self.name = name
        self.value = value
    }

    public init(_ name: StaticString, value: [UInt8] = []) {
        self.init(name: utf8Bytes(name), value: value)
    }

    public var u32: UInt32? { value.count == 4 ? cell(0) : nil }

    public var u64: UInt64? {
        guard value.count == 8, let high = cell(0), let low = cell(1) else { return nil }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// Whole cells only: a trailing partial cell means the value is not a cell list, and is ignored.
    public var cellCount: Int { value.count / 4 }

    public func cell(_ i: Int) -> UInt32? {
        guard i >= 0, i < cellCount else { return nil }
        let at = i * 4
        return UInt32(value[at]) << 24 | UInt32(value[at + 1]) << 16
            | UInt32(value[at + 2]) << 8 | UInt32(value[at + 3])
    }

    public var cells: [UInt32] { (0..<cellCount).map { cell($0)! } }

    /// A string list such as "compatible". An unterminated tail still counts as a string, because being
    /// lenient here cannot hide corruption that matters (the bytes are all in bounds already).
    public var strings: [[UInt8]] {
        var result: [[UInt8]] = []
        var start = 0
        for i in value.indices where value[i] == 0 {
            result.append(Array(value[start..<i]))
            start = i + 1
        }
        if start < value.count { result.append(Array(value[start...])) }
        return result
    }

    public var string: [UInt8]? {
        guard !value.isEmpty else { return nil }
        return Array(value.prefix { $0 != 0 })
    }

    /// Whether any entry of the string list is exactly `s`; walks the value in place, allocating nothing.
    public func containsString(_ s: StaticString) -> Bool {
        s.withUTF8Buffer { containsString($0) }
    }

    public func containsString(_ s: [UInt8]) -> Bool {
        containsString(s[...])
    }

    private func containsString<S: Collection<UInt8>>(_ s: S) -> Bool {
        var start = 0
        while start < value.count {
            let end = value[start...].firstIndex(of: 0) ?? value.count
            if value[start..<end].elementsEqual(s) { return true }
            start = end + 1
        }
        return false
    }
}

/// A node. A class because trees are edited in place (find a node, then change it) and shared by
/// reference while doing so. Nodes hold no parent pointer, so the tree has no reference cycles.
public final class DTNode {
    /// "cpu@0" style: base name, then '@' and the unit address. The root's name is empty.
    public var name: [UInt8]
    public var properties: [DTProperty]
    public var children: [DTNode]

    public init(name: [UInt8], properties: [DTProperty] = [], children: [DTNode] = []) {
        self.name = name
        self.properties = properties
        self.children = children
    }

    public convenience init(_ name: StaticString) {
        self.init(name: utf8Bytes(name))
    }

    // MARK: Names

    public var baseName: [UInt8] { Array(baseNameSlice) }

    public var unitAddress: [UInt8]? {
        name.firstIndex(of: atSign).map { Array(name[($0 + 1)...]) }
    }

    private var baseNameSlice: ArraySlice<UInt8> { name.prefix { $0 != atSign } }

    // MARK: Properties

    public func property(_ name: StaticString) -> DTProperty? {
        name.withUTF8Buffer { wanted in properties.first { $0.name.elementsEqual(wanted) } }
    }

    public func property(named name: [UInt8]) -> DTProperty? {
        properties.first { $0.name == name }
    }

    public func set(named name: [UInt8], bytes: [UInt8]) {
        if let i = properties.firstIndex(where: { $0.name == name }) {
            properties[i].value = bytes
        } else {
            properties.append(DTProperty(name: name, value: bytes))
        }
    }

    public func set(named name: [UInt8], u32: UInt32) { set(named: name, bytes: encodeCells([u32])) }
    public func set(named name: [UInt8], u64: UInt64) { set(named: name, bytes: encodeCells(dtCells([u64], cells: 2))) }
    public func set(named name: [UInt8], cells: [UInt32]) { set(named: name, bytes: encodeCells(cells)) }
    public func set(named name: [UInt8], string: [UInt8]) { set(named: name, bytes: string + [0]) }
    public func set(named name: [UInt8], strings: [[UInt8]]) { set(named: name, bytes: encodeStrings(strings)) }
    public func setEmpty(named name: [UInt8]) { set(named: name, bytes: []) }

    public func set(_ name: StaticString, bytes: [UInt8]) { set(named: utf8Bytes(name), bytes: bytes) }
    public func set(_ name: StaticString, u32: UInt32) { set(named: utf8Bytes(name), u32: u32) }
    public func set(_ name: StaticString, u64: UInt64) { set(named: utf8Bytes(name), u64: u64) }
    public func set(_ name: StaticString, cells: [UInt32]) { set(named: utf8Bytes(name), cells: cells) }
    public func set(_ name: StaticString, string: [UInt8]) { set(named: utf8Bytes(name), string: string) }
    public func set(_ name: StaticString, string: StaticString) { set(named: utf8Bytes(name), string: utf8Bytes(string)) }
    public func set(_ name: StaticString, strings: [[UInt8]]) { set(named: utf8Bytes(name), strings: strings) }
    public func setEmpty(_ name: StaticString) { set(named: utf8Bytes(name), bytes: []) }

    /// Writes "reg" in the cell sizes the *parent* declares; the caller passes them because nodes do not
    /// know their parent.
    public func setReg(_ ranges: [(address: UInt64, size: UInt64)], addressCells: Int, sizeCells: Int) {
        var cells: [UInt32] = []
        for range in ranges {
            cells += dtCells([range.address], cells: addressCells)
            cells += dtCells([range.size], cells: sizeCells)
        }
        set("reg", cells: cells)
    }

    @discardableResult
    public func remove(property name: StaticString) -> Bool {
        remove(property: utf8Bytes(name))
    }

    @discardableResult
    public func remove(property name: [UInt8]) -> Bool {
        guard let i = properties.firstIndex(where: { $0.name == name }) else { return false }
        properties.remove(at: i)
        return true
    }

    // MARK: Children

    /// An exact name wins; failing that, a name without '@' matches a child's base name, the way Linux
    /// resolves "/memory" to "memory@40000000" when the unit address is not known in advance.
    public func child(_ name: StaticString) -> DTNode? {
        name.withUTF8Buffer { childIndex(matching: $0) }.map { children[$0] }
    }

    public func child(named name: [UInt8]) -> DTNode? {
        childIndex(matching: name).map { children[$0] }
    }

    @discardableResult
    public func addChild(_ node: DTNode) -> DTNode {
        children.append(node)
        return node
    }

    /// Removes the child `child(named:)` would return.
    @discardableResult
    public func removeChild(named name: [UInt8]) -> Bool {
        guard let i = childIndex(matching: name) else { return false }
        children.remove(at: i)
        return true
    }

    @discardableResult
    public func removeChild(_ name: StaticString) -> Bool {
        removeChild(named: utf8Bytes(name))
    }

    private func childIndex<Name: Collection<UInt8>>(matching name: Name) -> Int? {
        if let exact = children.firstIndex(where: { $0.name.elementsEqual(name) }) { return exact }
        guard !name.contains(atSign) else { return nil }
        return children.firstIndex { $0.baseNameSlice.elementsEqual(name) }
    }

    /// Path relative to this node; leading, trailing and repeated '/' are ignored, so from the root
    /// "/cpus/cpu@0" and "cpus/cpu@0" are the same and "/" is the root itself.
    public func node(atPath path: StaticString) -> DTNode? {
        path.withUTF8Buffer { node(following: $0) }
    }

    public func node(atPath path: [UInt8]) -> DTNode? {
        node(following: path)
    }

    private func node<Path: Collection<UInt8>>(following path: Path) -> DTNode? {
        var current = self
        for component in path.split(separator: slash) {
            guard let i = current.childIndex(matching: component) else { return nil }
            current = current.children[i]
        }
        return current
    }

    // MARK: Traversal

    /// Depth-first, this node first, children in order: the order dtc and Linux enumerate in, so "the first
    /// match" means the same thing here as there.
    public func first(where predicate: (DTNode) -> Bool) -> DTNode? {
        if predicate(self) { return self }
        for child in children {
            if let found = child.first(where: predicate) { return found }
        }
        return nil
    }

    public func all(where predicate: (DTNode) -> Bool) -> [DTNode] {
        var found: [DTNode] = []
        collect(into: &found, where: predicate)
        return found
    }

    private func collect(into found: inout [DTNode], where predicate: (DTNode) -> Bool) {
        if predicate(self) { found.append(self) }
        for child in children { child.collect(into: &found, where: predicate) }
    }

    /// The parent is needed to decode "reg", and nodes keep no back pointer, so search for it.
    public func parent(of node: DTNode) -> DTNode? {
        first { candidate in candidate.children.contains { $0 === node } }
    }

    // MARK: Bindings

    public func isCompatible(_ c: StaticString) -> Bool {
        property("compatible")?.containsString(c) ?? false
    }

    public func isCompatible(_ c: [UInt8]) -> Bool {
        property("compatible")?.containsString(c) ?? false
    }

    public func findCompatible(_ c: StaticString) -> [DTNode] {
        all { $0.isCompatible(c) }
    }

    public func findCompatible(_ c: [UInt8]) -> [DTNode] {
        all { $0.isCompatible(c) }
    }

    /// A missing "status" means enabled; "ok" is the pre-standard spelling still found in old trees.
    public var isEnabled: Bool {
        guard let status = property("status") else { return true }
        return status.containsString("okay") || status.containsString("ok")
    }

    /// These describe this node's *children's* "reg"; the defaults are the ones the specification gives
    /// for a node that omits them.
    public var addressCells: Int { property("#address-cells")?.u32.map { Int($0) } ?? 2 }
    public var sizeCells: Int { property("#size-cells")?.u32.map { Int($0) } ?? 1 }

    /// Entries wider than 64 bits keep their low 64 bits, which for PCI's three-cell addresses is the
    /// address proper (the high cell is flags). Trailing cells that do not fill an entry are ignored.
    public func reg(parentAddressCells: Int, parentSizeCells: Int) -> [(address: UInt64, size: UInt64)] {
        guard let reg = property("reg"), parentAddressCells >= 0, parentSizeCells >= 0 else { return [] }
        let stride = parentAddressCells + parentSizeCells
        guard stride > 0 else { return [] }
        var result: [(address: UInt64, size: UInt64)] = []
        var i = 0
        while i + stride <= reg.cellCount {
            let address = combineCells(reg, from: i, count: parentAddressCells)
            let size = combineCells(reg, from: i + parentAddressCells, count: parentSizeCells)
            result.append((address: address, size: size))
            i += stride
        }
        return result
    }

    public func reg(in parent: DTNode) -> [(address: UInt64, size: UInt64)] {
        reg(parentAddressCells: parent.addressCells, parentSizeCells: parent.sizeCells)
    }

    /// "linux,phandle" is the pre-standard name; old firmware still emits only that one.
    public var phandle: UInt32? {
        (property("phandle") ?? property("linux,phandle"))?.u32
    }

    public func find(phandle: UInt32) -> DTNode? {
        first { $0.phandle == phandle }
    }
}

/// Encodes each value in `cells` big-endian cells, as "reg" and "ranges" want. Values wider than the cell
/// count allows are truncated to their low bits, matching what a reader of that many cells would see.
public func dtCells(_ values: [UInt64], cells: Int) -> [UInt32] {
    var result: [UInt32] = []
    for value in values {
        for k in stride(from: cells - 1, through: 0, by: -1) {
            result.append(UInt32(truncatingIfNeeded: value >> UInt64(32 * k)))
        }
    }
    return result
}

private let atSign = UInt8(ascii: "@")
private let slash = UInt8(ascii: "/")

private func combineCells(_ property: DTProperty, from first: Int, count: Int) -> UInt64 {
    var value: UInt64 = 0
    for i in first..<(first + count) {
        value = value << 32 | UInt64(property.cell(i)!)
    }
    return value
}

private func encodeCells(_ cells: [UInt32]) -> [UInt8] {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(cells.count * 4)
    for cell in cells { appendBigEndian(cell, to: &bytes) }
    return bytes
}

private func encodeStrings(_ strings: [[UInt8]]) -> [UInt8] {
    var bytes: [UInt8] = []
    for s in strings {
        bytes += s
        bytes.append(0)
    }
    return bytes
}

func appendBigEndian(_ value: UInt32, to bytes: inout [UInt8]) {
    bytes.append(UInt8(truncatingIfNeeded: value >> 24))
    bytes.append(UInt8(truncatingIfNeeded: value >> 16))
    bytes.append(UInt8(truncatingIfNeeded: value >> 8))
    bytes.append(UInt8(truncatingIfNeeded: value))
}

public func utf8Bytes(_ s: StaticString) -> [UInt8] {
    s.withUTF8Buffer { Array($0) }
}

#if !hasFeature(Embedded)
// Host-side conveniences for the CLI and tests. The labels differ from the StaticString overloads on
// purpose: same-label String overloads would capture literals on the host and silently take a different
// path from the one the hypervisor runs.
extension DTProperty {
    public var nameText: String { String(decoding: name, as: UTF8.self) }
    public var stringText: String? { string.map { String(decoding: $0, as: UTF8.self) } }
    public var stringTexts: [String] { strings.map { String(decoding: $0, as: UTF8.self) } }
}

extension DTNode {
    public var nameText: String { String(decoding: name, as: UTF8.self) }
    public func node(atPathText path: String) -> DTNode? { node(atPath: Array(path.utf8)) }
    public func property(text name: String) -> DTProperty? { property(named: Array(name.utf8)) }
}
#endif
