import Testing
@testable import TernCore

@Suite struct ByteRingTests {
    @Test func fifoOrderAndRefusalWhenFull() {
        var ring = ByteRing(capacity: 3)
        let accepted = [ring.push(1), ring.push(2), ring.push(3), ring.push(4)]
        #expect(accepted == [true, true, true, false])
        #expect(ring.isFull)
        let first = ring.pop()
        #expect(first == 1)
        let again = ring.push(5)
        #expect(again)
        let rest = [ring.pop(), ring.pop(), ring.pop(), ring.pop()]
        #expect(rest == [2, 3, 5, nil])
        #expect(ring.isEmpty)
    }

    @Test func replacingOldestKeepsTheNewest() {
        var ring = ByteRing(capacity: 2)
        for b: UInt8 in [1, 2, 3] { ring.pushReplacingOldest(b) }
        let out = [ring.pop(), ring.pop(), ring.pop()]
        #expect(out == [2, 3, nil])
    }
}

@Suite struct VirtualUARTTests {
    @Test func outputIsHandedBackAndTransmitNeverBacksUp() {
        var uart = VirtualUART()
        let r = uart.write(offset: 0x000, size: 1, value: 0x41)
        #expect(r.ok && r.output == 0x41)
        let flags = uart.read(offset: 0x018, size: 4)
        #expect(flags == 1 << 7 | 1 << 4)                                // TX FIFO empty, RX FIFO empty
        #expect(!uart.interruptAsserted)
        _ = uart.write(offset: 0x038, size: 4, value: 1 << 5)            // TXIM
        #expect(uart.interruptAsserted)
    }

    @Test func inputRaisesReceiveUntilDrained() {
        var uart = VirtualUART()
        _ = uart.write(offset: 0x038, size: 4, value: 1 << 4 | 1 << 6)  // RXIM, RTIM
        #expect(!uart.interruptAsserted)
        let taken = [uart.receive(0x61), uart.receive(0x62)]
        #expect(taken == [true, true])
        #expect(uart.interruptAsserted)
        let masked = uart.read(offset: 0x040, size: 4)
        #expect(masked == 1 << 4 | 1 << 6)
        let bytes = [uart.read(offset: 0x000, size: 4), uart.read(offset: 0x000, size: 1)]
        #expect(bytes == [0x61, 0x62])
        #expect(!uart.interruptAsserted)
        let flags = uart.read(offset: 0x018, size: 4) ?? 0
        #expect(flags & 1 << 4 != 0)                                     // RXFE again
    }

    @Test func fullInputFIFODropsAndOddAccessesAreRefused() {
        var uart = VirtualUART()
        var accepted = 0
        for _ in 0 ..< 65 where uart.receive(0x30) { accepted += 1 }
        #expect(accepted == 64 && !uart.hasRoomForInput)
        let misaligned = uart.read(offset: 0x002, size: 4), wide = uart.read(offset: 0x000, size: 8)
        #expect(misaligned == nil && wide == nil)
        let refused = uart.write(offset: 0x038, size: 8, value: 0)
        #expect(!refused.ok)
    }
}
