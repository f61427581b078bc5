// The out-of-bounds guest: reads one page past the end of its own RAM. Stage 2 has nothing there, so
// the hypervisor must destroy this domain (naming the address) and nobody else may notice.
import GuestKit
import GuestKitAsm
import TernCore

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let target = GuestLayout.ram.raw + args.memoryBytes + 0x1000
    print("oob: my RAM ends at \(hex(GuestLayout.ram.raw + args.memoryBytes)); reading \(hex(target))")
    let value = guest_load64(target)
    print("oob: ERROR: read \(hex(value)) from outside my memory and survived")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
