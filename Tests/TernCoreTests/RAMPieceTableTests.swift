import Testing
@testable import TernCore

@Suite struct RAMPieceTableTests {
    let base: UInt64 = 0x4000_0000
    let piece = RAMPieceTable.pieceSize

    @Test func aPieceIsUnusedOnlyWhenItsLastPageGoesAndNothingElseUsesIt() {
        var t = RAMPieceTable(base: base, end: base + 16 * piece)
        let p = base + 3 * piece
        t.assign(p, owner: 7)
        t.populated(p, pages: 512, owner: 7)
        for _ in 0 ..< 511 { let ok = t.removed(p, owner: 7); #expect(!ok) }
        do { let ok = t.removed(p, owner: 7); #expect(ok) }                     // the last page
        do { let ok = t.isUnused(p, owner: 7); #expect(ok) }
        do { let ok = t.removed(p, owner: 7); #expect(!ok) }                    // nothing left to remove: no second "unused"
        t.populated(p, pages: 1, owner: 7)                  // populated again before the sweep
        do { let ok = t.isUnused(p, owner: 7); #expect(!ok) }
    }

    @Test func aUseKeepsAPieceWhosePagesHaveAllGone() {
        var t = RAMPieceTable(base: base, end: base + 4 * piece)
        let p = base + piece
        t.assign(p, owner: 2)
        t.populated(p, pages: 2, owner: 2)
        do { let ok = t.use(p + 0x5000, owner: 2); #expect(ok) }                // another domain maps a frame of it
        do { let ok = t.use(p + 0x5000, owner: 2); #expect(ok) }                // and copies from it meanwhile
        do { let ok = t.removed(p, owner: 2); #expect(!ok) }
        do { let ok = t.removed(p, owner: 2); #expect(!ok) }                    // every page given back, but still used
        do { let ok = t.isUnused(p, owner: 2); #expect(!ok) }
        do { let ok = t.endUse(p + 0x5000, owner: 2); #expect(!ok) }
        do { let ok = t.endUse(p + 0x5000, owner: 2); #expect(ok) }             // the last use ends: now it may go
        do { let ok = t.isUnused(p, owner: 2); #expect(ok) }
        do { let ok = t.endUse(p + 0x5000, owner: 2); #expect(!ok) }            // an end with no use is not counted
    }

    @Test func aCountThatReachesItsMaximumPinsThePieceForGood() {
        var t = RAMPieceTable(base: base, end: base + 2 * piece)
        t.assign(base, owner: 3)
        t.setUses(base, UInt32.max - 1)
        do { let ok = t.use(base, owner: 3); #expect(ok) }
        do { let ok = t.use(base, owner: 3); #expect(ok) }           // no overflow
        do { let e = t[host: base]; #expect(e.uses == .max) }
        do { let ok = t.endUse(base, owner: 3); #expect(!ok) }
        do { let e = t[host: base]; #expect(e.uses == .max) }        // never counts down again
        do { let ok = t.removed(base, owner: 3); #expect(!ok) }
    }

    @Test func framesOfNoPieceOrOfAnotherOwnerAreNotCounted() {
        var t = RAMPieceTable(base: base, end: base + 4 * piece)
        let p = base + 2 * piece
        t.assign(p, owner: 5)
        // A frame lent to domain 5 (not in a piece of its own), another owner's tag, RAM outside.
        do { let ok = t.use(base + 0x3000, owner: 5); #expect(!ok) }
        do { let ok = t.use(p, owner: 6); #expect(!ok) }
        do { let ok = t.use(base + 8 * piece, owner: 5); #expect(!ok) }
        do { let ok = t.use(base - 0x1000, owner: 5); #expect(!ok) }
        do { let ok = t.use(p, owner: 0); #expect(!ok) }
        do { let ok = t.endUse(p, owner: 6); #expect(!ok) }
        do { let ok = t.removed(p, owner: 6); #expect(!ok) }
        do { let e = t[host: p]; #expect(e.uses == 0 && e.owner == 5) }
        // Pages beyond a piece's 512 are not believed.
        t.populated(p, pages: 600, owner: 5)
        do { let e = t[host: p]; #expect(e.pages == 512) }
    }

    @Test func releasingAPieceForgetsItsOwnerAndCounts() {
        var t = RAMPieceTable(base: base, end: base + 2 * piece)
        t.assign(base, owner: 1)
        t.populated(base, pages: 10, owner: 1)
        _ = t.use(base, owner: 1)
        t.release(base)
        do { let e = t[host: base]; #expect(e == RAMPieceTable.Piece()) }
        do { let ok = t.endUse(base, owner: 1); #expect(!ok) }
        // Given to another domain afresh.
        t.assign(base, owner: 9)
        do { let e = t[host: base]; #expect(e.owner == 9 && e.pages == 0) }
    }

    @Test func theTableCoversRAMFromAnUnalignedBase() {
        let t = RAMPieceTable(base: base + 0x1000, end: base + 3 * piece + 0x1000)
        do { let (b, c) = (t.base, t.count); #expect(b == base && c == 4) }
        let empty = RAMPieceTable(base: 0, end: 0)
        do { let c = empty.count; #expect(c == 0) }
    }
}

@Suite struct GracePeriodTests {
    /// CPU 0 sets the piece aside (no risk); CPU 1 runs a vCPU of the owner (slot 4); CPU 2 runs another
    /// domain's (slot 9), which may be writing through a grant mapping of the piece; CPU 3 is idle.
    let grace = GracePeriod(interrupts: [10, 20, 30, 40], running: [5, 4, 9, -1], this: 0)

    @Test func everyCPURunningAVCPUButTheSweepersIsWatched() {
        #expect(grace.running == [-1, 4, 9, -1])
        #expect(!grace.isOver(interrupts: [10, 20, 30, 40], running: [5, 4, 9, -1]))
        // The sweeper and the idle CPU may do anything meanwhile.
        #expect(!grace.isOver(interrupts: [99, 21, 30, 41], running: [4, 4, 9, 5]))
        #expect(!grace.isOver(interrupts: [10, 20, 31, 40], running: [5, 4, 9, -1]))
    }

    @Test func itIsOverOnceEachWatchedCPUTookAnInterruptOrSwitched() {
        #expect(grace.isOver(interrupts: [10, 21, 31, 40], running: [5, 4, 9, -1]))     // interrupts
        #expect(grace.isOver(interrupts: [10, 20, 30, 40], running: [5, -1, 5, -1]))    // switched
        #expect(grace.isOver(interrupts: [10, 21, 30, 40], running: [5, 4, -1, -1]))    // one of each
    }

    @Test func aMachineWithNothingElseRunningNeedsNoWait() {
        let alone = GracePeriod(interrupts: [1, 2], running: [4, -1], this: 0)
        #expect(alone.isOver(interrupts: [1, 2], running: [4, -1]))
    }
}
