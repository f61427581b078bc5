import Testing
@testable import TernCore

/// The console ring `xl dmesg` reads, with Xen's readconsole rules.
@Suite struct ConsoleHistoryTests {
    private func read(_ h: inout ConsoleHistory, max: UInt32 = 100, from index: UInt32 = 0, incremental: Bool = false,
                      clear: Bool = false) -> (text: String, next: UInt32) {
        var out = [UInt8](repeating: 0, count: Int(max))
        let r = h.read(max: max, from: index, incremental: incremental, clear: clear) { offset, piece in
            for (i, b) in piece.enumerated() { out[offset + i] = b }
            return true
        }!
        return (String(decoding: out.prefix(Int(r.count)), as: UTF8.self), r.next)
    }

    private func write(_ h: inout ConsoleHistory, _ text: String) { for b in text.utf8 { h.append(b) } }

    @Test func keepsTheNewestBytesAndReadsThemInOrder() {
        var h = ConsoleHistory(capacity: 8)
        write(&h, "hello")
        #expect(read(&h).text == "hello")
        write(&h, " world")                     // 11 bytes written: the oldest 3 are gone
        #expect(h.start == 3 && h.end == 11)
        #expect(read(&h) == ("lo world", 11))   // across the wrap, in two pieces
        #expect(read(&h, max: 3) == ("lo ", 6))
    }

    @Test func incrementalReadsGoOnFromTheirIndex() {
        var h = ConsoleHistory(capacity: 16)
        write(&h, "abcdef")
        let first = read(&h, max: 4)
        #expect(first == ("abcd", 4))
        #expect(read(&h, from: first.next, incremental: true) == ("ef", 6))
        #expect(read(&h, from: 6, incremental: true) == ("", 6))
        // An index past the newest byte reads nothing made up: from the oldest, as on Xen.
        #expect(read(&h, from: 40, incremental: true) == ("abcdef", 6))
        // An index older than what is held starts at the oldest byte, as on Xen.
        write(&h, "0123456789abcdef")
        #expect(read(&h, from: 2, incremental: true).text == "0123456789abcdef")
    }

    @Test func clearingForgetsWhatIsHeld() {
        var h = ConsoleHistory(capacity: 16)
        write(&h, "old")
        _ = read(&h, clear: true)
        write(&h, "new")
        #expect(read(&h).text == "new")
    }

    @Test func aFaultStopsTheRead() {
        var h = ConsoleHistory(capacity: 16)
        write(&h, "text")
        #expect(h.read(max: 10, from: 0, incremental: false, clear: true) { _, _ in false } == nil)
        #expect(read(&h).text == "text")        // nothing cleared by a read that faulted
    }
}
