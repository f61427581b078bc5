// The grant guest, in two roles that find each other by domain id. The granter (role=granter
// peer=<id>) places its grant table, grants a page with a message in it (ref 8, writable) and a second
// page read-only (ref 9), and waits for the mapper's reply in the page. The mapper (role=mapper
// peer=<id>) maps ref 8 into its own address space, reads the message, answers in the page, copies
// with GNTTABOP_copy, tries what it may not do, and unmaps. With leave=early the granter powers off
// while its page is still mapped: the mapper must go on reading the same bytes. With leave=crash the
// mapper crashes instead of unmapping: its mapping must go with it.
// Output: "grant: ..." lines.
import GuestKit
import GuestKitAsm
import TernCore

// Computed, not stored: guest_main is called directly, so this file's top-level code never runs.
var message: [UInt8] { Array("TERN-GRANT-42 from the granter".utf8) }
var reply: [UInt8] { Array("ACK from the mapper".utf8) }
var replyOffset: UInt64 { 2048 }
var seenOffset: UInt64 { 3072 }
var afterRevoke: [UInt8] { Array("WRITTEN-AFTER-THE-REVOKE".utf8) }
var afterRevokeOffset: UInt64 { 3500 }
var triedOffset: UInt64 { 3600 }
var mapAddress: UInt64 { 0x3000_0000 }      // nothing there in a domain of ours

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let peer = UInt16(args.integer("peer", default: 0))
    Interrupts.start()
    if args.text("role", default: "granter") == "mapper" {
        mapper(peer: peer, args: args)
    } else {
        granter(peer: peer, leave: args.text("leave", default: ""))
    }
    Xen.shutdown(.poweroff)
}

func page() -> UInt64 {
    let p = UInt64(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096)))
    for i in 0 ..< 512 { guest_store64(p + UInt64(i) * 8, 0) }
    return p
}

func write(_ bytes: [UInt8], at address: UInt64) {
    for (i, b) in bytes.enumerated() { guest_store8(address + UInt64(i), b) }
}

func text(at address: UInt64, count: Int) -> String {
    String(decoding: (0 ..< count).map { guest_load8(address + UInt64($0)) }, as: UTF8.self)
}

/// Waits up to `ms` for `done`, checking every 10 ms.
func wait(_ ms: Int, until done: () -> Bool) -> Bool {
    for _ in 0 ..< ms / 10 {
        if done() { return true }
        Timer.sleep(milliseconds: 10)
    }
    return done()
}

func granter(peer: UInt16, leave: String) {
    let placed = Grants.placeTable()
    guard placed == 0 else { print("grant: placing the grant table = \(placed)"); return }
    let shared = page(), readOnly = page()
    write(message, at: shared)
    write(message, at: readOnly)
    Grants.grant(8, page: shared, to: peer)
    Grants.grant(9, page: readOnly, to: peer, readOnly: true)
    print("grant: granted ref 8 (writable) and ref 9 (read-only) to d\(peer)")
    guard wait(5000, until: { guest_load8(shared + replyOffset) != 0 }) else { print("grant: no reply"); return }
    print("grant: the mapper wrote \"\(text(at: shared + replyOffset, count: reply.count))\"")
    let inUse = guest_load32(Grants.entry(8)) & 0xFFFF
    print("grant: ref 8 flags while mapped 0x\(String(inUse, radix: 16))")
    write(Array("SEEN".utf8), at: shared + seenOffset)
    if leave == "early" {
        print("grant: leaving with ref 8 still mapped")
        return
    }
    if leave == "revoke" {
        // A hostile granter ends the grant while it is mapped, and grants the same page to nobody: the
        // mapping stays what it was (the same frame, still ours), and the entry gives nothing more.
        guest_store32(Grants.entry(8), 0)
        print("grant: ref 8 revoked while mapped")
        write(afterRevoke, at: shared + afterRevokeOffset)
        // Alive until the mapper has tried the revoked entry (a dead granter's grants are bad_domain).
        _ = wait(5000, until: { guest_load8(shared + triedOffset) != 0 })
    }
    let freed = wait(5000, until: { guest_load32(Grants.entry(8)) & UInt32(GrantFlags.reading | GrantFlags.writing) == 0 })
    print("grant: ref 8 flags after the unmap 0x\(String(guest_load32(Grants.entry(8)) & 0xFFFF, radix: 16))\(freed ? "" : " (still in use)")")
    guest_store32(Grants.entry(8), 0)          // unused now, so it may simply be revoked
    print("grant: ref 8 revoked")
}

func mapper(peer: UInt16, args: BootArguments) {
    var mapped: (Int16, UInt32) = (-1, 0)
    _ = wait(5000) {
        mapped = Grants.map(8, of: peer, at: mapAddress)
        return mapped.0 == 0
    }
    guard mapped.0 == 0 else { print("grant: map of ref 8 = \(mapped.0)"); return }
    print("grant: mapped ref 8 of d\(peer), handle \(mapped.1): \"\(text(at: mapAddress, count: message.count))\"")
    write(reply, at: mapAddress + replyOffset)

    let own = page()
    let copied = Grants.copy(from: .grant(8, of: peer), to: .frame(own >> 12, offset: 100), length: UInt16(message.count))
    print("grant: copy from ref 8 = \(copied): \"\(text(at: own + 100, count: message.count))\"")
    let denied = Grants.copy(from: .frame(own >> 12), to: .grant(9, of: peer), length: 16)
    print("grant: copy into read-only ref 9 = \(denied)")
    print("grant: writable map of read-only ref 9 = \(Grants.map(9, of: peer, at: mapAddress + 0x1000).0)")
    print("grant: map of ref 8 at an unaligned address = \(Grants.map(8, of: peer, at: mapAddress + 0x2010).0)")
    print("grant: map of ref 8 over our own RAM = \(Grants.map(8, of: peer, at: GuestLayout.ram.raw).0)")
    print("grant: map of ref 8 of domain 99 = \(Grants.map(8, of: 99, at: mapAddress + 0x3000).0)")
    print("grant: map of ref 3 (never granted) = \(Grants.map(3, of: peer, at: mapAddress + 0x3000).0)")
    print("grant: map of ref 9999 (beyond the table) = \(Grants.map(9999, of: peer, at: mapAddress + 0x3000).0)")
    print("grant: copy across a page end = \(Grants.copy(from: .grant(8, of: peer, offset: 4000), to: .frame(own >> 12), length: 200))")
    print("grant: copy from a frame not ours = \(Grants.copy(from: .frame(own >> 12, of: peer), to: .frame(own >> 12), length: 8))")

    guard wait(5000, until: { guest_load8(mapAddress + seenOffset) != 0 }) else { print("grant: granter never saw the reply"); return }
    // Long enough for a granter that leaves to be gone, and its memory to be what Tern kept.
    Timer.sleep(milliseconds: UInt64(args.integer("linger", default: 0)))
    if args.text("leave", default: "") == "crash" {
        print("grant: crashing with ref 8 still mapped")
        Xen.shutdown(.crash)
    }
    if args.text("leave", default: "") == "revoke" {
        let seen = wait(5000, until: { guest_load8(mapAddress + afterRevokeOffset) != 0 })
        print("grant: after the revoke the mapping shows \"\(seen ? text(at: mapAddress + afterRevokeOffset, count: afterRevoke.count) : "")\"")
        print("grant: map of revoked ref 8 = \(Grants.map(8, of: peer, at: mapAddress + 0x3000).0)")
        write(Array("TRIED".utf8), at: mapAddress + triedOffset)
    }
    print("grant: still mapped: \"\(text(at: mapAddress, count: message.count))\"")
    print("grant: unmap = \(Grants.unmap(mapped.1, at: mapAddress))")
    print("grant: unmap again = \(Grants.unmap(mapped.1, at: mapAddress))")
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
