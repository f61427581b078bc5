@testable import TernCore

/// The hypervisor side of grant_table_op as a fake: it records what it was asked and answers as told.
final class FakeGrantHost: GrantTableHost {
    let caller = DomainID(3)
    var placedFrames = 0
    var maps: [(ref: GrantRef, granter: DomainID, address: GuestPhysicalAddress, readOnly: Bool, device: Bool)] = []
    var mapAnswer: Result<(handle: UInt32, busAddress: UInt64), GrantStatusError> = .success((7, 0))
    var unmaps: [(handle: UInt32, address: UInt64)] = []
    var unmapAnswer = GrantStatus.okay
    var copies: [(GrantCopyPointer, GrantCopyPointer, UInt64)] = []
    var flushes: [(HostPhysicalAddress, UInt64, UInt64, Bool)] = []
    var flushAnswer: UInt64 = 0

    func map(_ ref: GrantRef, of granter: DomainID, at address: GuestPhysicalAddress, readOnly: Bool,
             device: Bool) -> Result<(handle: UInt32, busAddress: UInt64), GrantStatusError> {
        maps.append((ref, granter, address, readOnly, device))
        return mapAnswer
    }

    func unmap(handle: UInt32, at address: UInt64) -> GrantStatus {
        unmaps.append((handle, address))
        return unmapAnswer
    }

    func copy(from source: GrantCopyPointer, to destination: GrantCopyPointer, length: UInt64) -> GrantStatus {
        copies.append((source, destination, length))
        return .okay
    }

    func flush(frame: HostPhysicalAddress, offset: UInt64, length: UInt64, invalidate: Bool) -> UInt64 {
        flushes.append((frame, offset, length, invalidate))
        return flushAnswer
    }
}
