// The seam for host memory that several CPUs change at once: a 32-bit word read and changed only with
// atomics, and only by the hypervisor's CPUs (a word a guest changes too goes through SharedWord, whose
// retries are bounded). In the hypervisor it is a word in a Domain changed with LDAR and CAS; in host
// tests a plain variable, or a real atomic shared by threads. Logic that must be right under races
// (reference counts) is written against it.

public protocol AtomicWord {
    /// The word as it is now (an ordered load).
    func load() -> UInt32
    /// Stores `desired` if the word still holds `expected`; returns what it held (== expected on success).
    func compareExchange(expected: UInt32, desired: UInt32) -> UInt32
}

extension AtomicWord {
    /// Applies `change` until it sticks, as SharedWord does for words a guest races with; here only
    /// hypervisor CPUs change the word, each in a few instructions, so retrying cannot go on for ever.
    /// Returns the word as it was just before the change, or as it is when `change` declines (nil).
    @inline(__always)
    public func update(_ change: (UInt32) -> UInt32?) -> UInt32 {
        var word = load()
        while let desired = change(word) {
            let seen = compareExchange(expected: word, desired: desired)
            if seen == word { return word }
            word = seen
        }
        return word
    }
}
