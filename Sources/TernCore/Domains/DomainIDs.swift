// Domain IDs as Xen has them: any number below DOMID_FIRST_RESERVED (0x7FF0; DOMID_SELF, DOMID_IO,
// DOMID_XEN and the rest sit above), unique among live domains, unrelated to where a domain sits in
// Tern's tables. The boot configuration names its domains' IDs; domains created later get the next
// free one after the last handed out, as Xen's domid rover does, so a just-destroyed domain's ID is
// not reused at once by accident.

public enum DomainIDs {
    /// DOMID_FIRST_RESERVED in xen.h: the first ID that names no domain.
    public static let firstReserved: UInt32 = 0x7FF0

    public enum Problem: Equatable, Sendable {
        /// The entry at `index` is DOMID_FIRST_RESERVED or above.
        case reserved(index: Int, id: UInt32)
        /// The entry at `index` repeats the one at `first`.
        case repeated(index: Int, first: Int, id: UInt32)
    }

    /// Checks the IDs a boot configuration asks for, in its order; nil when every one is usable.
    /// (No Dictionary: the hypervisor links no floating point, which a Dictionary's sizing needs.)
    public static func check(_ ids: [UInt32]) -> Problem? {
        for (index, id) in ids.enumerated() {
            guard id < firstReserved else { return .reserved(index: index, id: id) }
            if let first = ids[..<index].firstIndex(of: id) { return .repeated(index: index, first: first, id: id) }
        }
        return nil
    }
}

/// Hands out IDs for domains created while the machine runs (Xen's domid rover).
public struct DomainIDAllocator: Sendable {
    private var last: UInt16

    /// `last`: the highest ID handed out so far (the boot domains'), where the search continues from.
    public init(after last: UInt16 = 0) { self.last = last }

    /// The first ID after the last one handed out that `inUse` does not claim, wrapping past the
    /// reserved range to 1 (0 is the control domain's); nil when every ID is in use.
    public mutating func allocate(inUse: (DomainID) -> Bool) -> DomainID? {
        let count = DomainIDs.firstReserved - 1           // IDs 1 ..< firstReserved
        var candidate = UInt32(last)
        for _ in 0 ..< count {
            candidate = candidate % count + 1
            let id = DomainID(UInt16(candidate))
            if !inUse(id) {
                last = UInt16(candidate)
                return id
            }
        }
        return nil
    }
}

extension Array {
    /// Puts the elements in the order of their domain IDs (ties keep their order), as Xen lists its
    /// domains. An insertion sort: the lists are short and built rarely (boot, a toolstack's
    /// domain list), and the library's sort would add kilobytes to the image for each element type.
    public mutating func sortByDomainID(_ id: (Element) -> DomainID) {
        guard count > 1 else { return }
        for i in 1 ..< count {
            let moving = self[i]
            let key = id(moving).raw
            var j = i
            while j > 0 && id(self[j - 1]).raw > key {
                self[j] = self[j - 1]
                j -= 1
            }
            self[j] = moving
        }
    }
}
