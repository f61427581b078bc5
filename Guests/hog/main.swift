// The hog: asks one hypercall for a lot of work and says how long it took. A hypervisor that bounds
// what one call does at EL2 (the rest a continuation) lets the scheduler take the CPU meanwhile, so a
// domain sharing the CPU is never kept from it for that long.
import GuestKit
import GuestKitAsm
import TernCore

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let kib = args.integer("kib", default: 256)
    // Lines of dots, so the console shows what arrived without drowning in one endless line.
    let size = kib * 1024
    let text = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    let base = UInt64(UInt(bitPattern: text))
    for i in 0 ..< size { guest_store8(base + UInt64(i), i % 160 == 159 || i == size - 1 ? 0x0A : 0x2E) }
    // Let the other domain get going first.
    let settle = Timer.ticks + Timer.frequency / 5
    while Timer.ticks < settle {}
    let start = Timer.ticks
    let r = Xen.call(.console_io, ConsoleIOCommand.write.rawValue, UInt64(size), base)
    let ms = (Timer.ticks - start) * 1000 / Timer.frequency
    print("hog: console_io write of \(kib) KiB = \(r) in \(ms) ms")
    Xen.shutdown(.poweroff)
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
