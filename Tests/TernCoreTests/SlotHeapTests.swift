import Testing
@testable import TernCore

@Suite struct SlotHeapTests {
    /// Random sets, moves and removals against a plain list sorted the same way.
    @Test func keepsTheOrderOfASortedList() {
        var heap = SlotHeap(capacity: 200)
        var model: [Int: SlotHeap.Entry] = [:]
        var state: UInt64 = 7
        func random(_ n: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % n
        }
        for _ in 0 ..< 20_000 {
            let slot = Int(random(200))
            switch random(4) {
            case 0, 1:
                let e = SlotHeap.Entry(key: random(50), tie: random(3), slot: slot)
                heap.set(slot, key: e.key, tie: e.tie)
                model[slot] = e
            case 2:
                heap.remove(slot)
                model[slot] = nil
            default:
                let expected = model.values.min { $0.precedes($1) }
                let taken = heap.removeFirst()
                #expect(taken == expected)
                if let taken { model[taken.slot] = nil }
            }
            #expect(heap.count == model.count)
            #expect(heap.contains(slot) == (model[slot] != nil))
            #expect(heap.entry(slot) == model[slot])
        }
        var previous: SlotHeap.Entry?
        while let e = heap.removeFirst() {
            if let previous { #expect(previous.precedes(e)) }
            previous = e
        }
        let empty = heap.isEmpty        // #expect takes no noncopyable operand
        #expect(empty)
    }

    @Test func ordersByKeyThenTieThenSlot() {
        var heap = SlotHeap(capacity: 8)
        heap.set(5, key: 1, tie: 2)
        heap.set(3, key: 1, tie: 2)
        heap.set(7, key: 1, tie: 1)
        heap.set(0, key: 2, tie: 0)
        #expect(heap.removeFirst()?.slot == 7)
        #expect(heap.removeFirst()?.slot == 3)
        #expect(heap.removeFirst()?.slot == 5)
        #expect(heap.removeFirst()?.slot == 0)
        #expect(heap.removeFirst() == nil)
        // Setting a slot that is in moves it rather than adding it twice.
        heap.set(1, key: 9, tie: 0)
        heap.set(1, key: 0, tie: 0)
        #expect(heap.count == 1)
        #expect(heap.first?.key == 0)
    }

    /// More slots, and everything already in stays in, in order.
    @Test func growsKeepingItsEntries() {
        var heap = SlotHeap(capacity: 4)
        for slot in 0 ..< 4 { heap.set(slot, key: UInt64(10 - slot), tie: 0) }
        heap.grow(to: 2)                // smaller: nothing changes
        #expect(heap.capacity == 4)
        heap.grow(to: 10)
        #expect(heap.capacity == 10 && heap.count == 4)
        #expect(!heap.contains(9) && heap.entry(2)?.key == 8)
        heap.set(9, key: 1, tie: 0)
        heap.set(5, key: 8, tie: 0)
        heap.remove(1)
        var order: [Int] = []
        while let e = heap.removeFirst() { order.append(e.slot) }
        #expect(order == [9, 3, 2, 5, 0])
    }
}
