// A fixed-size FIFO of bytes: typed input waiting for a domain (its UART's receive FIFO, the control
// domain's console_io buffer).

public struct ByteRing: Sendable {
    private var bytes: [UInt8]
    private var head = 0
    public private(set) var count = 0

    public init(capacity: Int) { bytes = [UInt8](repeating: 0, count: capacity) }

    public var isEmpty: Bool { count == 0 }
    public var isFull: Bool { count == bytes.count }

    /// Appends `b`; false (and nothing changes) when the ring is full, as a hardware FIFO drops it.
    @discardableResult
    public mutating func push(_ b: UInt8) -> Bool {
        guard !isFull else { return false }
        bytes[(head + count) % bytes.count] = b
        count += 1
        return true
    }

    /// Appends `b`, dropping the oldest byte when full: the newest input matters most to a reader
    /// that comes late.
    public mutating func pushReplacingOldest(_ b: UInt8) {
        if isFull { _ = pop() }
        push(b)
    }

    public mutating func pop() -> UInt8? {
        guard count > 0 else { return nil }
        let b = bytes[head]
        head = (head + 1) % bytes.count
        count -= 1
        return b
    }
}
