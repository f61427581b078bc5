// The out-of-bounds guest: reads (or, with `mode=fetch`, runs) one page past the end of its own RAM. Stage 2
// has nothing there, so the hypervisor gives it a synchronous external abort at that address, as
// hardware would; GuestKit's handler reports it and crashes the domain. Nobody else may notice.
import GuestKit
import GuestKitAsm
import TernCore

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let target = GuestLayout.ram.raw + args.memoryBytes + 0x1000
    if args.text("mode", default: "read") == "fetch" {
        print("oob: my RAM ends at \(hex(GuestLayout.ram.raw + args.memoryBytes)); jumping to \(hex(target))")
        let code = unsafeBitCast(UInt(target), to: (@convention(c) () -> Void).self)
        code()
        print("oob: ERROR: ran code outside my memory and survived")
        Xen.shutdown(.poweroff)
    }
    print("oob: my RAM ends at \(hex(GuestLayout.ram.raw + args.memoryBytes)); reading \(hex(target))")
    let value = guest_load64(target)
    print("oob: ERROR: read \(hex(value)) from outside my memory and survived")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
