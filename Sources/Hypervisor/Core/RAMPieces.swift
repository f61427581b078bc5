// RAM a live domain gives back (its balloon) goes back to the heap a 2 MiB piece at a time: TernCore's
// RAMPieceTable counts each piece's pages and the uses that keep it, and a piece left with neither is
// swept off the domain after the memory_op that emptied it, set aside until its grace period is over
// (GracePeriod: no CPU can still write through a translation made before, and the CPU that removed
// its last page has done its stage-2 flush), then scrubbed and freed by the reclaim work of
// `schedule`. Until it is freed it still counts against the domain's max_pages, so a domain that
// populates and gives back in a loop cannot hold more than its maximum. Pieces of domains built at
// boot are one block and are never given back while the domain lives.
import TernArchAsm
import TernCore

/// Toolstack-built domains' RAM pieces; an entry changes only under its owner's physMap lock.
nonisolated(unsafe) var ramPieceTable = RAMPieceTable(base: 0, end: 0)

/// Some domain has a piece with neither pages nor uses: the next memory_op sweeps.
nonisolated(unsafe) var pieceSweepWanted = false

/// Pieces off their domains, waiting out their grace period. Under the scheduler lock.
private struct SetAside {
    let piece: HostPhysicalAddress
    /// Its domain, whose piece count it stays in until it is freed.
    let domain: Domain
    let grace: GracePeriod
}
nonisolated(unsafe) private var setAside: [SetAside] = []

@inline(__always) func pieceBase(_ frame: HostPhysicalAddress) -> UInt64 { frame.raw & ~(ramPieceSize - 1) }

extension Domain {
    /// Tags its pieces in the table (slot + 1: 0 is no one's).
    var pieceOwner: UInt16 { UInt16(truncatingIfNeeded: slot + 1) }

    /// The frame behind page `gfn` for a use by someone else (a grant map or copy of it, or a foreign
    /// mapping, which `mapped` asks to be in its stage 2 now), counted in its piece until `endUse`:
    /// its RAM (a grant may name a page given back, whose frame its piece still holds), or a page lent
    /// to it (its console and xenstore pages).
    func useRAM(_ gfn: GuestFrameNumber, mapped: Bool) -> HostPhysicalAddress? {
        // A domain built at boot keeps its one block while it lives: nothing to count.
        if memory.size != 0 && !mapped, let frame = hostAddress(ofRAM: gfn.address, length: pageSize) { return frame }
        let d = self
        return physMap.withLock { m in
            let ram = mapped ? nil : d.hostAddress(ofRAM: gfn.address, length: pageSize)
            guard let frame = ram ?? d.ownPage(gfn, m) else { return nil }
            if d.memory.size == 0 { _ = ramPieceTable.use(pieceBase(frame), owner: d.pieceOwner) }
            return frame
        }
    }

    /// A use `useRAM` gave has ended.
    func endUse(_ frame: HostPhysicalAddress) {
        guard memory.size == 0 else { return }
        let d = self
        let unused = physMap.withLock { m -> Bool in
            guard ramPieceTable.endUse(pieceBase(frame), owner: d.pieceOwner) else { return false }
            m.hasUnusedPieces = true
            return true
        }
        if unused { pieceSweepWanted = true }
    }

    /// The host address of `[address, address + length)` of its RAM, which the hypervisor keeps and
    /// writes for the domain from now on (shared_info, vcpu_info, FIFO event pages): its piece stays
    /// while the domain lives.
    func pinRAM(_ address: GuestPhysicalAddress, length: UInt64) -> HostPhysicalAddress? {
        let d = self
        return physMap.withLock { _ in
            guard let host = d.hostAddress(ofRAM: address, length: length) else { return nil }
            if d.memory.size == 0 { _ = ramPieceTable.use(pieceBase(host), owner: d.pieceOwner) }
            return host
        }
    }

    /// Pins the piece of its RAM behind `host`, a frame the hypervisor found through the guest's own
    /// tables and keeps (the runstate area); false when it is no longer its RAM.
    func pinFrame(_ host: HostPhysicalAddress) -> Bool {
        let d = self
        return physMap.withLock { _ in
            d.memory.size != 0 ? d.ownsRAM(host, length: 8) : ramPieceTable.use(pieceBase(host), owner: d.pieceOwner)
        }
    }

    /// Takes its pieces that have neither pages nor uses off it (the caller frees them after their
    /// grace period; they stay in its piece count until then).
    fileprivate func takeUnusedPieces() -> [HostPhysicalAddress] {
        let d = self
        return physMap.withLock { m in
            var taken: [HostPhysicalAddress] = []
            guard m.hasUnusedPieces else { return taken }
            m.hasUnusedPieces = false
            for i in 0 ..< d.ramPieces.count where d.ramPieces[i] != 0 && ramPieceTable.isUnused(d.ramPieces[i], owner: d.pieceOwner) {
                ramPieceTable.release(d.ramPieces[i])
                taken.append(HostPhysicalAddress(d.ramPieces[i]))
                d.ramPieces[i] = 0
            }
            return taken
        }
    }
}

/// Each CPU's interrupt count and running vCPU slot, for grace periods. Under the scheduler lock.
private func cpuStates() -> (interrupts: [UInt64], running: [Int]) {
    var interrupts: [UInt64] = []
    var running: [Int] = []
    for cpu in cpus {
        interrupts.append(cpu.interrupts)
        running.append(cpu.current?.slot ?? -1)
    }
    return (interrupts, running)
}

/// Sets aside the pieces live domains no longer use. Called with no lock held, after the memory_op's
/// stage-2 flush: no TLB reaches them any more.
func sweepUnusedPieces() {
    lockScheduler()
    pieceSweepWanted = false
    let now = cpuStates()
    let this = thisCPUIndex()
    for case let d? in domains where !d.dying {
        let pieces = d.takeUnusedPieces()
        guard !pieces.isEmpty else { continue }
        let grace = GracePeriod(interrupts: now.interrupts, running: now.running, this: this)
        for piece in pieces {
            setAside.append(SetAside(piece: piece, domain: d, grace: grace))
            reclaimsPending += 1
        }
    }
    unlockScheduler()
}

/// The first set-aside piece whose grace period is over. Under the scheduler lock.
private func readySetAside() -> Int? {
    guard !setAside.isEmpty else { return nil }
    let now = cpuStates()
    for i in 0 ..< setAside.count where setAside[i].grace.isOver(interrupts: now.interrupts, running: now.running) {
        return i
    }
    return nil
}

var setAsidePieceReady: Bool { readySetAside() != nil }

/// Scrubs and frees one set-aside piece whose grace period is over, outside the lock. Called locked,
/// returns locked; false when none is ready.
func freeSetAsidePiece() -> Bool {
    guard let i = readySetAside() else { return false }
    let taken = setAside.remove(at: i)
    unlockScheduler()
    freeFrames(taken.piece, pages: RAMPieceTable.pagesPerPiece)
    // A domain released meanwhile has counted its pieces out already.
    taken.domain.physMap.withLock { m in if m.ramPieceCount > 0 { m.ramPieceCount -= 1 } }
    lockScheduler()
    reclaimsPending -= 1
    return true
}
