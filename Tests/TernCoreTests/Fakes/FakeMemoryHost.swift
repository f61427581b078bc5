@testable import TernCore

/// memory_op's host for the host fuzzer: the caller (the control domain 0, or domU 1 or 2) and the
/// domains it may name. Every call the handler makes must keep MemoryOpHost's word - a domU acts only
/// on itself and never maps another's pages, an extent is aligned to its order, a grant frame is one
/// the table may have at a page of the window - or the fake stops the run.
final class FakeMemoryHost: MemoryOpHost {
    let caller: DomainID
    var privileged: Bool { caller.raw == 0 }
    /// Pages populate_physmap may still give.
    var pagesLeft: UInt64 = 4096
    private(set) var continuations = 0

    init(caller: UInt16) { self.caller = DomainID(caller) }

    func exists(_ id: DomainID) -> Bool { id.raw <= 2 }

    func mayAct(on target: DomainID, _ what: String) {
        precondition(privileged || target == caller, "domain \(caller.raw)'s \(what) of domain \(target.raw)")
    }

    func reservation(of id: DomainID) -> (current: UInt64, maximum: UInt64)? {
        mayAct(on: id, "reservation")
        return exists(id) ? (100, 200) : nil
    }

    func populate(_ target: DomainID, at gfn: GuestFrameNumber, order: Int) -> XenError? {
        mayAct(on: target, "populate_physmap")
        precondition(order >= 0 && order < 64 && gfn.raw & ((1 << UInt64(order)) - 1) == 0, "frame \(gfn.raw) of order \(order)")
        guard exists(target) else { return .ESRCH }
        let pages = UInt64(1) << UInt64(order)
        guard pages <= pagesLeft else { return .ENOMEM }
        pagesLeft -= pages
        return nil
    }

    func remove(_ target: DomainID, at gfn: GuestFrameNumber) -> XenError? {
        mayAct(on: target, "removal")
        return exists(target) ? nil : .ESRCH
    }

    func mapForeign(_ owner: DomainID, frame: GuestFrameNumber, at gfn: GuestFrameNumber) -> XenError? {
        precondition(privileged, "domain \(caller.raw) maps domain \(owner.raw)'s page")
        return exists(owner) ? nil : .ESRCH
    }

    func grantFrameLimit(of owner: DomainID) -> Int? { exists(owner) ? 4 : nil }

    func mapGrantFrame(of owner: DomainID, _ index: Int, at gfn: GuestFrameNumber) -> XenError? {
        mayAct(on: owner, "grant frame mapping")
        precondition(index >= 0 && index < 4, "grant frame \(index) of 4")
        return nil
    }

    func continuation(_ command: UInt64) -> UInt64 {
        continuations += 1
        return command
    }

    func placeSharedInfo(at page: GuestPhysicalAddress) -> UInt64 {
        precondition(page.raw & 0xFFF == 0, "shared_info at \(page.raw)")
        return 0
    }

    func placeGrantFrame(_ index: Int, at page: GuestPhysicalAddress) -> UInt64 {
        let window = GuestLayout.grantTable.raw
        precondition(index >= 0 && index < GrantTableOp.maximumFrames && page.raw >= window
                     && page.raw < window + GuestLayout.grantTableSize && page.raw & 0xFFF == 0,
                     "grant frame \(index) at \(page.raw)")
        return 0
    }
}
