// Sequences that make sense to a peer (another fuzzing domain, `peer=N` on the command line), so grant
// maps, copies and event-channel binds meet live grants and ports - ones being revoked, ones whose
// page was just given back, ones whose domain is ending itself or restarting - from both sides on both
// CPUs at once. Each side grants pages of its scratch in refs 1-15 of its table (and revokes them
// without asking, as a hostile guest may), maps the other's refs 1-15 just past its RAM, where its
// own fuzzing reads and writes, unmaps and copies them, and offers, binds, sends to and closes ports
// 1-31. What comes back is counted by outcome: whether the interesting states were reached.
import GuestKit
import GuestKitAsm
import TernCore

extension Fuzzer {
    static let peerRefs: UInt64 = 16
    static let mapSlots = 16

    /// Where slot `i` of this vCPU maps a grant of the peer: past RAM, where MMIO and pointers of the
    /// fuzzing reach (Arena.pointer, Region.pastRAM).
    func mapSlot(_ i: Int) -> UInt64 { arena.ramEnd + UInt64(VCPU.index * Self.mapSlots + i) * 4096 }

    mutating func peerOperation(_ peer: UInt16) {
        let ref = UInt32(1 + random.below(Self.peerRefs - 1))
        let slot = Int(random.below(UInt64(Self.mapSlots)))
        switch random.below(12) {
        case 0, 1:
            // To the peer mostly, else to a neighbour (the canary, dom0, itself) that may not use it.
            let to = random.below(6) == 0 ? UInt16(random.below(4)) : peer
            Grants.grant(ref, page: arena.scratch + random.below(Arena.pages) * 4096, to: to, readOnly: random.below(3) == 0)
        case 2:
            guest_store32(Grants.entry(ref), 0)             // revoked, whoever is using it
        case 3, 4, 5:
            unmap(slot)
            let (status, handle) = Grants.map(ref, of: peer, at: mapSlot(slot), readOnly: random.below(3) == 0)
            if status == 0 {
                handles[slot] = handle
                stats.count(.peerMapped)
            }
        case 6:
            unmap(slot)
        case 7:
            // Between a grant of the peer and a scratch page, either way, at any offset and length.
            let mine = Grants.Side.frame(arena.scratch >> 12 + random.below(Arena.pages), offset: UInt16(random.below(4096)))
            let theirs = Grants.Side.grant(ref, of: peer, offset: UInt16(random.below(4096)))
            let length = UInt16(random.below(2) == 0 ? random.below(4097) : random.below(64))
            let toPeer = random.below(2) == 0
            if Grants.copy(from: toPeer ? mine : theirs, to: toPeer ? theirs : mine, length: length) == 0 {
                stats.count(.peerCopied)
            }
        case 8:
            _ = Events.allocateUnbound(for: peer)
        case 9:
            if case .success = Events.bindInterdomain(peer, port: UInt32(1 + random.below(31))) { stats.count(.peerBound) }
        case 10:
            Events.send(UInt32(1 + random.below(31)))
        default:
            var port = UInt32(1 + random.below(31))
            _ = Xen.call(.event_channel_op, EventChannelOpCommand.close.rawValue, pointingTo: &port)
        }
        stats.count(.peer)
    }

    /// Unmaps what slot `i` holds, if anything, before the slot is mapped again: a slot's handle is not
    /// lost, so a restarting peer, whose memory Tern keeps while it is mapped, waits only for the next
    /// unmap of it. (The random grant_table_op calls map and unmap too, untracked; those mappings last
    /// until this domain ends.)
    mutating func unmap(_ i: Int) {
        guard handles[i] != .max else { return }
        _ = Grants.unmap(handles[i], at: mapSlot(i))
        handles[i] = .max
    }

    /// Gives back every slot's mapping: a vCPU done with its operations holds none of the peer's pages.
    mutating func unmapAll() {
        for i in 0 ..< Self.mapSlots { unmap(i) }
    }
}
