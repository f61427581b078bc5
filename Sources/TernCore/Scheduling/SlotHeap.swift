// A binary min-heap of small slot numbers, each with a key, that also finds a slot's place in it: the
// run queues (ordered by virtual time) and the sleepers (ordered by wake-up time) are both this. Every
// operation is O(log n) or better, so what the scheduler does per switch stays flat however many
// domains there are. Storage is plain pointers for `capacity` slots (no copy-on-write checks on the
// switch path), grown only when the owner asks for more slots.

public struct SlotHeap: ~Copyable {
    /// Ordered by `key`, then `tie`, then `slot`: the order never depends on insertion order.
    public struct Entry: Equatable {
        public var key: UInt64
        public var tie: UInt64
        public var slot: Int

        public init(key: UInt64, tie: UInt64, slot: Int) {
            self.key = key
            self.tie = tie
            self.slot = slot
        }

        @inline(__always) func precedes(_ other: Entry) -> Bool {
            if key != other.key { return key < other.key }
            if tie != other.tie { return tie < other.tie }
            return slot < other.slot
        }
    }

    public private(set) var capacity: Int
    public private(set) var count = 0
    private var entries: UnsafeMutablePointer<Entry>
    /// Each slot's index in `entries` plus one; 0 when it is not in the heap.
    private var positions: UnsafeMutablePointer<Int32>

    public init(capacity: Int) {
        precondition(capacity > 0 && capacity < Int(Int32.max))
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
        positions = .allocate(capacity: capacity)
        positions.initialize(repeating: 0, count: capacity)
    }

    deinit {
        entries.deallocate()
        positions.deallocate()
    }

    /// Room for slots below `newCapacity`; every entry stays where it is. A smaller capacity is ignored.
    @inline(never) public mutating func grow(to newCapacity: Int) {
        guard newCapacity > capacity else { return }
        precondition(newCapacity < Int(Int32.max))
        let newEntries = UnsafeMutablePointer<Entry>.allocate(capacity: newCapacity)
        newEntries.moveInitialize(from: entries, count: count)
        let newPositions = UnsafeMutablePointer<Int32>.allocate(capacity: newCapacity)
        newPositions.moveInitialize(from: positions, count: capacity)
        (newPositions + capacity).initialize(repeating: 0, count: newCapacity - capacity)
        entries.deallocate()
        positions.deallocate()
        entries = newEntries
        positions = newPositions
        capacity = newCapacity
    }

    public var isEmpty: Bool { count == 0 }

    /// The first entry in order, if any.
    public var first: Entry? { count == 0 ? nil : entries[0] }

    public func contains(_ slot: Int) -> Bool {
        slot >= 0 && slot < capacity && positions[slot] != 0
    }

    /// The slot's entry, if it is in the heap.
    public func entry(_ slot: Int) -> Entry? {
        contains(slot) ? entries[Int(positions[slot]) - 1] : nil
    }

    /// The entries in heap order (not sorted): for the rare walk over all of them.
    public func entry(at index: Int) -> Entry {
        precondition(index >= 0 && index < count)
        return entries[index]
    }

    /// The slot of the entry at `index` in heap order (0 is the first), read by a CPU that does not
    /// hold the heap's lock while its owner may be changing it: a hint to be checked under the lock.
    /// It may be stale or come from an entry in motion, but it is a slot below the capacity or nil
    /// (the storage is replaced only while every lock is held).
    public func slotUnlocked(at index: Int) -> Int? {
        guard index >= 0 && index < count && index < capacity else { return nil }
        let slot = entries[index].slot
        return slot >= 0 && slot < capacity ? slot : nil
    }

    /// Puts `slot` in with this key, or moves it there if it is in already.
    public mutating func set(_ slot: Int, key: UInt64, tie: UInt64) {
        precondition(slot >= 0 && slot < capacity)
        let e = Entry(key: key, tie: tie, slot: slot)
        if positions[slot] != 0 {
            let i = Int(positions[slot]) - 1
            let old = entries[i]
            entries[i] = e
            if e.precedes(old) { siftUp(i) } else { siftDown(i) }
            return
        }
        entries[count] = e
        positions[slot] = Int32(count + 1)
        count += 1
        siftUp(count - 1)
    }

    /// Takes `slot` out; nothing happens if it is not in.
    public mutating func remove(_ slot: Int) {
        guard contains(slot) else { return }
        let i = Int(positions[slot]) - 1
        positions[slot] = 0
        count -= 1
        guard i != count else { return }
        let last = entries[count]
        entries[i] = last
        positions[last.slot] = Int32(i + 1)
        if i > 0 && last.precedes(entries[(i - 1) / 2]) { siftUp(i) } else { siftDown(i) }
    }

    /// Takes the first entry out.
    public mutating func removeFirst() -> Entry? {
        guard let e = first else { return nil }
        remove(e.slot)
        return e
    }

    private mutating func siftUp(_ start: Int) {
        var i = start
        let e = entries[i]
        while i > 0 {
            let parent = (i - 1) / 2
            guard e.precedes(entries[parent]) else { break }
            place(entries[parent], at: i)
            i = parent
        }
        place(e, at: i)
    }

    private mutating func siftDown(_ start: Int) {
        var i = start
        let e = entries[i]
        while true {
            var child = 2 * i + 1
            guard child < count else { break }
            if child + 1 < count && entries[child + 1].precedes(entries[child]) { child += 1 }
            guard entries[child].precedes(e) else { break }
            place(entries[child], at: i)
            i = child
        }
        place(e, at: i)
    }

    @inline(__always) private func place(_ e: Entry, at i: Int) {
        entries[i] = e
        positions[e.slot] = Int32(i + 1)
    }
}
