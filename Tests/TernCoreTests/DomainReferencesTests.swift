import Foundation
import Synchronization
import Testing
@testable import TernCore

/// A word only one thread touches.
private final class PlainWord: AtomicWord {
    var value: UInt32 = 0
    func load() -> UInt32 { value }
    func compareExchange(expected: UInt32, desired: UInt32) -> UInt32 {
        let seen = value
        if seen == expected { value = desired }
        return seen
    }
}

/// A word threads race on, with the host's atomics.
private final class SharedAtomicWord: AtomicWord, Sendable {
    let value = Atomic<UInt32>(0)
    func load() -> UInt32 { value.load(ordering: .sequentiallyConsistent) }
    func compareExchange(expected: UInt32, desired: UInt32) -> UInt32 {
        value.compareExchange(expected: expected, desired: desired, ordering: .sequentiallyConsistent).original
    }
}

/// A domain's lifetime: held by whoever works on its memory, released only when nobody does.
@Suite struct DomainReferencesTests {
    @Test func aHeldDomainIsNotReleasedUntilTheLastHolderLetsGo() {
        let w = PlainWord()
        #expect(DomainReferences.hold(w))
        #expect(DomainReferences.hold(w))
        #expect(DomainReferences.holders(w) == 2)
        #expect(!DomainReferences.release(w))
        #expect(DomainReferences.drop(w) == 1)
        #expect(!DomainReferences.release(w))
        #expect(!DomainReferences.isReleased(w))
        #expect(DomainReferences.drop(w) == 0)
        #expect(DomainReferences.release(w))
        #expect(DomainReferences.isReleased(w))
    }

    @Test func aReleasedDomainCannotBeHeldAgain() {
        let w = PlainWord()
        #expect(DomainReferences.release(w))
        #expect(!DomainReferences.hold(w))
        #expect(DomainReferences.holders(w) == 0)
        #expect(!DomainReferences.release(w))       // once only
    }

    @Test func theCountCannotOverflowIntoTheReleasedMark() {
        let w = PlainWord()
        w.value = DomainReferences.released - 2
        #expect(DomainReferences.hold(w))
        #expect(!DomainReferences.hold(w))
        #expect(!DomainReferences.isReleased(w))
        #expect(DomainReferences.holders(w) == DomainReferences.released - 1)
    }

    /// Four tasks hold and let go while a fifth tries to release: the release succeeds only at a moment
    /// nobody holds the domain, and every hold after it fails (a holder that saw the mark while it held
    /// would be a use of released memory). The releaser starts once the holders are well under way, and
    /// the holders go on until they have seen the release, so the two always overlap.
    @Test func holdersRacingARelease() async {
        final class Race: Sendable {
            let word = SharedAtomicWord()
            let held = Atomic<Int>(0)
            let refused = Atomic<Int>(0)
            let sawReleasedWhileHolding = Atomic<Int>(0)
            let holdsAfterRelease = Atomic<Int>(0)
            let released = Atomic<Bool>(false)
        }
        let race = Race()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while race.held.load(ordering: .relaxed) < 1000 { await Task.yield() }
                while !DomainReferences.release(race.word) {}
                race.released.store(true, ordering: .sequentiallyConsistent)
            }
            for _ in 0 ..< 4 {
                group.addTask {
                    var afterRelease = 0, tries = 0
                    while afterRelease < 100 {
                        tries += 1
                        if tries % 64 == 0 { await Task.yield() }
                        let wasReleased = race.released.load(ordering: .sequentiallyConsistent)
                        if wasReleased { afterRelease += 1 }
                        guard DomainReferences.hold(race.word) else {
                            race.refused.add(1, ordering: .relaxed)
                            continue
                        }
                        race.held.add(1, ordering: .relaxed)
                        if wasReleased { race.holdsAfterRelease.add(1, ordering: .relaxed) }
                        if DomainReferences.isReleased(race.word) { race.sawReleasedWhileHolding.add(1, ordering: .relaxed) }
                        DomainReferences.drop(race.word)
                    }
                }
            }
        }
        #expect(DomainReferences.isReleased(race.word))
        #expect(DomainReferences.holders(race.word) == 0)
        #expect(race.held.load(ordering: .relaxed) >= 1000)
        #expect(race.refused.load(ordering: .relaxed) >= 400)         // each holder saw the release
        #expect(race.sawReleasedWhileHolding.load(ordering: .relaxed) == 0)
        #expect(race.holdsAfterRelease.load(ordering: .relaxed) == 0)
    }
}
