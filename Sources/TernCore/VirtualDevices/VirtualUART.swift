// The emulated SBSA UART (a PL011 subset) a domain finds at 0x22000000, as Xen's vpl011 offers it to
// dom0less guests. Output never backs up (it goes straight to the hypervisor's console), so the
// transmit FIFO is always empty; input arrives from the console when the domain has the focus.

public struct VirtualUART {
    public static let size: UInt64 = 0x1000
    /// Interrupt bits in RIS/MIS/IMSC/ICR.
    static let receive: UInt32 = 1 << 4
    static let transmit: UInt32 = 1 << 5
    static let receiveTimeout: UInt32 = 1 << 6
    /// Flag register bits.
    static let receiveEmpty: UInt32 = 1 << 4
    static let transmitEmpty: UInt32 = 1 << 7
    static let inputCapacity = 64

    public private(set) var mask: UInt32 = 0
    private var control: UInt32 = 0x301         // UARTEN, TXE, RXE: usable before anyone programs it
    private var lineControl: UInt32 = 0x70      // 8 bits, FIFOs on
    private var input = ByteRing(capacity: inputCapacity)
    public init() {}

    public var rawStatus: UInt32 {
        var s = Self.transmit
        if !input.isEmpty { s |= Self.receive | Self.receiveTimeout }
        return s
    }

    /// The level of the UART's interrupt line (SPI 32).
    public var interruptAsserted: Bool { rawStatus & mask != 0 }

    public var hasRoomForInput: Bool { !input.isFull }

    /// A byte typed on the console for this domain. Returns false when the FIFO is full (it is dropped).
    @discardableResult
    public mutating func receive(_ byte: UInt8) -> Bool {
        input.push(byte)
    }

    /// A register read; nil for an offset the guest must not touch (it gets an abort, as from hardware).
    public mutating func read(offset: Int, size: Int) -> UInt64? {
        guard size <= 4, offset & (size - 1) == 0 else { return nil }
        let value: UInt32
        switch offset & ~3 {
        case 0x000: value = UInt32(input.pop() ?? 0)   // DR
        case 0x004: value = 0                         // RSR: no errors, ever
        case 0x018: value = Self.transmitEmpty | (input.isEmpty ? Self.receiveEmpty : 0)
        case 0x024, 0x028, 0x034, 0x048: value = 0    // baud divisors, FIFO levels, DMA: accepted, inert
        case 0x02C: value = lineControl
        case 0x030: value = control
        case 0x038: value = mask
        case 0x03C: value = rawStatus
        case 0x040: value = rawStatus & mask
        case 0xFE0: value = 0x11                      // PL011 peripheral and PrimeCell ids
        case 0xFE4: value = 0x10
        case 0xFE8: value = 0x14
        case 0xFEC: value = 0x00
        case 0xFF0: value = 0x0D
        case 0xFF4: value = 0xF0
        case 0xFF8: value = 0x05
        case 0xFFC: value = 0xB1
        default: value = 0
        }
        return UInt64(value >> UInt32(8 * (offset & 3)) & (size == 4 ? 0xFFFF_FFFF : (1 << UInt32(8 * size)) - 1))
    }

    /// A register write. A byte written to DR is returned for the console.
    public mutating func write(offset: Int, size: Int, value: UInt64) -> (ok: Bool, output: UInt8?) {
        guard size <= 4, offset & (size - 1) == 0 else { return (false, nil) }
        let v = UInt32(truncatingIfNeeded: value)
        switch offset {
        case 0x000: return (true, UInt8(truncatingIfNeeded: v))
        case 0x02C where size == 4: lineControl = v & 0xFF
        case 0x030 where size == 4: control = v & 0xFF87
        case 0x038 where size == 4: mask = v & 0x7FF
        // ICR (0x044) changes nothing: every status bit is a level that follows its condition (TX: the
        // FIFO is always empty; RX and RT: input is waiting), so clearing one cannot outlast it.
        default: break
        }
        return (true, nil)
    }
}
