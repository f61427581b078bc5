// A toolstack-built domain's RAM comes in 2 MiB pieces of host memory, given as it populates. When its
// balloon gives pages back, a piece whose every page has gone can return to the heap, but only once
// nothing else still reaches it: another domain's grant map, grant copy or foreign mapping of one of
// its frames, or a page of it the hypervisor writes into for the domain (shared_info, vcpu_info, FIFO
// event pages: pinned for the domain's life). This table counts both, per piece of host RAM, so the
// frame a mapping ends with finds its piece without a search. A piece's entry changes only under its
// owning domain's physMap lock (the caller's business).

public struct RAMPieceTable: ~Copyable {
    public static let pieceSize: UInt64 = 0x20_0000
    public static let pagesPerPiece = Int(pieceSize / 4096)

    public struct Piece: Equatable, Sendable {
        /// The owning domain's tag (its slot + 1); 0: not a piece of anyone's RAM.
        public var owner: UInt16 = 0
        /// Pages of it the owner has in its stage 2.
        public var pages: UInt16 = 0
        /// Uses that keep it, other than the owner's own pages.
        public var uses: UInt32 = 0
        public init() {}
    }

    public let base: UInt64
    public let count: Int
    private let pieces: UnsafeMutablePointer<Piece>

    /// Covers host RAM in `[base, end)`.
    public init(base: UInt64, end: UInt64) {
        self.base = base & ~(Self.pieceSize - 1)
        count = end > self.base ? Int((end - self.base + Self.pieceSize - 1) / Self.pieceSize) : 0
        pieces = .allocate(capacity: max(count, 1))
        pieces.initialize(repeating: Piece(), count: max(count, 1))
    }

    deinit { pieces.deallocate() }

    private func index(_ host: UInt64) -> Int? {
        guard host >= base else { return nil }
        let i = (host - base) / Self.pieceSize
        return i < UInt64(count) ? Int(i) : nil
    }

    public subscript(host host: UInt64) -> Piece { index(host).map { pieces[$0] } ?? Piece() }

    /// The piece at `host` (2 MiB aligned) is now `owner`'s, with nothing in it yet.
    public mutating func assign(_ host: UInt64, owner: UInt16) {
        guard let i = index(host) else { return }
        pieces[i] = Piece()
        pieces[i].owner = owner
    }

    /// The piece went back to the heap (or to a dead domain's reclaim).
    public mutating func release(_ host: UInt64) {
        guard let i = index(host) else { return }
        pieces[i] = Piece()
    }

    /// `pages` pages of `owner`'s piece at `host` came into its stage 2.
    public mutating func populated(_ host: UInt64, pages: Int, owner: UInt16) {
        guard let i = index(host), pieces[i].owner == owner, owner != 0 else { return }
        pieces[i].pages = UInt16(min(Int(pieces[i].pages) + pages, Self.pagesPerPiece))
    }

    /// A page of `owner`'s piece at `host` left its stage 2. True when the piece is now unused.
    public mutating func removed(_ host: UInt64, owner: UInt16) -> Bool {
        guard let i = index(host), pieces[i].owner == owner, owner != 0, pieces[i].pages > 0 else { return false }
        pieces[i].pages -= 1
        return pieces[i].pages == 0 && pieces[i].uses == 0
    }

    /// Something outside the owner's stage 2 now reaches the frame at `host`. False (nothing counted)
    /// when it is no piece of `owner`'s (a frame lent to it, or RAM of a domain built at boot). A count
    /// that reaches its maximum stays there: the piece is then kept for the owner's life (a guest that
    /// pins pages over and over only keeps its own memory, and cannot overflow the count).
    public mutating func use(_ host: UInt64, owner: UInt16) -> Bool {
        guard let i = index(host), pieces[i].owner == owner, owner != 0 else { return false }
        if pieces[i].uses != .max { pieces[i].uses += 1 }
        return true
    }

    /// A use that `use` counted has ended. True when the piece is now unused.
    public mutating func endUse(_ host: UInt64, owner: UInt16) -> Bool {
        guard let i = index(host), pieces[i].owner == owner, owner != 0, pieces[i].uses > 0,
              pieces[i].uses != .max else { return false }
        pieces[i].uses -= 1
        return pieces[i].pages == 0 && pieces[i].uses == 0
    }

    /// For tests: a count near its maximum without 2^32 uses.
    mutating func setUses(_ host: UInt64, _ uses: UInt32) {
        guard let i = index(host) else { return }
        pieces[i].uses = uses
    }

    /// Whether `owner`'s piece at `host` has neither pages nor uses (and may go once no CPU can still
    /// reach it).
    public func isUnused(_ host: UInt64, owner: UInt16) -> Bool {
        guard let i = index(host), owner != 0 else { return false }
        return pieces[i].owner == owner && pieces[i].pages == 0 && pieces[i].uses == 0
    }
}

/// When a piece a live domain gave back may be reused. A CPU in a hypercall may hold a translation (AT)
/// of a page in it, made before the page left a stage 2 (the owner's, or another domain's grant or
/// foreign mapping of it), and write through it for a few more instructions; the stage-2 flush does not
/// reach that, and the flush itself may still be to come on the CPU that removed the page. So each
/// CPU that was running a vCPU when the piece was set aside must first have left what it was doing:
/// taken an interrupt from the guest (hypercalls run with interrupts masked, so one is taken only
/// between them) or switched vCPU.
public struct GracePeriod: Equatable, Sendable {
    /// Per CPU: the interrupts it had taken and the vCPU slot it ran when the piece was set aside; a
    /// slot of -1 is no risk (it ran no vCPU, or it is the CPU that set the piece aside, which holds no
    /// translation once its memory_op is over).
    public private(set) var interrupts: [UInt64]
    public private(set) var running: [Int]

    /// `interrupts` and `running` are each CPU's now; `this` is the CPU setting the piece aside.
    public init(interrupts: [UInt64], running: [Int], this: Int) {
        self.interrupts = interrupts
        self.running = running
        if this >= 0 && this < running.count { self.running[this] = -1 }
    }

    /// Given each CPU's interrupt count and vCPU slot now.
    public func isOver(interrupts now: [UInt64], running nowRunning: [Int]) -> Bool {
        for i in 0 ..< running.count where running[i] >= 0 && i < now.count {
            if now[i] == interrupts[i] && nowRunning[i] == running[i] { return false }
        }
        return true
    }
}
