// The hypervisor's console kept in memory, as Xen keeps its conring: everything printed (Tern's own
// lines and its domains'), the newest `capacity` bytes of it, for the control domain to read back
// with sysctl readconsole (`xl dmesg`). Positions are free-running 32-bit counters, as Xen's conringc
// and conringp: the oldest byte still held and the next to be written.

public struct ConsoleHistory: ~Copyable {
    public let capacity: Int
    private let bytes: UnsafeMutablePointer<UInt8>
    /// The oldest byte held (or, after a clear, the first one not yet cleared).
    public private(set) var start: UInt32 = 0
    /// Where the next byte goes.
    public private(set) var end: UInt32 = 0

    /// `capacity` is a power of two.
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity & (capacity - 1) == 0 && capacity <= 1 << 30)
        self.capacity = capacity
        bytes = .allocate(capacity: capacity)
    }

    deinit { bytes.deallocate() }

    public mutating func append(_ b: UInt8) {
        bytes[Int(end) & (capacity - 1)] = b
        end &+= 1
        if end &- start > UInt32(capacity) { start = end &- UInt32(capacity) }
    }

    /// XEN_SYSCTL_readconsole: up to `max` bytes from the oldest held, or from `index` when
    /// `incremental` and it is newer than that, handed to `copy` in at most two pieces (offset into the
    /// caller's buffer, bytes); `copy` returns false on a fault. With `clear`, what is held now is
    /// forgotten. Returns the bytes read and the position after them, or nil on a fault.
    public mutating func read(max: UInt32, from index: UInt32, incremental: Bool, clear: Bool,
                              _ copy: (Int, UnsafeBufferPointer<UInt8>) -> Bool) -> (count: UInt32, next: UInt32)? {
        var c = start
        // Xen's test: a position after the oldest byte and not past the newest, counters wrapping;
        // any other index reads from the oldest.
        if incremental && (start <= end ? start < index && index <= end : start < index || index <= end) { c = index }
        var sofar: UInt32 = 0
        while c != end && sofar < max {
            let at = Int(c) & (capacity - 1)
            var length = end &- c
            if at + Int(length) > capacity { length = UInt32(capacity - at) }
            if sofar + length > max { length = max - sofar }
            guard copy(Int(sofar), UnsafeBufferPointer(start: bytes + at, count: Int(length))) else { return nil }
            sofar += length
            c &+= length
        }
        if clear { start = end }
        return (sofar, c)
    }
}
