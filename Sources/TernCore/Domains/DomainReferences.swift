// A domain's lifetime as a reference count, as Xen's get_domain/put_domain and domain_destroy keep it.
// Work that reaches into another domain's memory (a grant copy or map, an event sent to a peer) holds
// the domain for as long as it works; a dead domain's memory is released only when nobody holds it,
// and once released it can no longer be held. The count and the released mark share one word, so
// "not released, so one more holder" and "nobody holds it, so released" are each one compare-and-swap
// and cannot interleave. The count takes no lock; finding the domain to hold is the caller's (the
// hypervisor looks it up in its domain table, under a run-queue lock).

public enum DomainReferences {
    /// Set for good once the domain's memory is being released (Xen's DOMAIN_DESTROYED).
    public static let released: UInt32 = 1 << 31

    /// One more holder, unless the domain is released (or, impossibly, held 2^31 - 1 times at once).
    @inline(__always)
    public static func hold(_ word: some AtomicWord) -> Bool {
        let before = word.update { w in w & released == 0 && w < released - 1 ? w + 1 : nil }
        return before & released == 0 && before < released - 1
    }

    /// One holder fewer. Returns how many still hold it.
    @inline(__always)
    @discardableResult
    public static func drop(_ word: some AtomicWord) -> UInt32 {
        let before = word.update { w in
            precondition(w & ~released != 0, "a domain reference dropped that was never held")
            return w - 1
        }
        return (before & ~released) - 1
    }

    /// Marks the domain released if nobody holds it; false (and nothing changes) if somebody does.
    public static func release(_ word: some AtomicWord) -> Bool {
        word.compareExchange(expected: 0, desired: released) == 0
    }

    /// How many hold it now (a snapshot, for the log).
    public static func holders(_ word: some AtomicWord) -> UInt32 { word.load() & ~released }

    public static func isReleased(_ word: some AtomicWord) -> Bool { word.load() & released != 0 }
}
