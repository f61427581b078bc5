// Changing a 32-bit word that a guest may be changing at the same moment (event words, grant entries):
// compare-and-swap, retried a bounded number of times. A guest that keeps the word moving can only
// make its own update fail; it can never keep the hypervisor spinning.

public enum SharedWord {
    public static let attempts = 1024

    /// Applies `change` to the word, which was `current` when last read, through `exchange` (a
    /// compare-and-swap that returns the value it found). `change` returns nil when the word needs no
    /// change. Returns the word as it was just before it was changed (or, declined, as it is); nil when
    /// every attempt lost a race.
    public static func update(_ current: UInt32, _ change: (UInt32) -> UInt32?,
                              exchange: (_ expected: UInt32, _ desired: UInt32) -> UInt32) -> UInt32? {
        var word = current
        for _ in 0 ..< attempts {
            guard let desired = change(word) else { return word }
            let seen = exchange(word, desired)
            if seen == word { return word }
            word = seen
        }
        return nil
    }
}
