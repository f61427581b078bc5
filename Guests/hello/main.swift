// The hello guest: says who it is, checks the hypervisor's Xen version, sleeps on its virtual timer,
// yields, and powers off (through SCHEDOP_shutdown, or PSCI SYSTEM_OFF with exit=psci), or reboots
// with exit=reboot.
import GuestKit
import TernCore

@_cdecl("guest_main")
func guestMain(_ dtb: UInt64) {
    let args = BootArguments(deviceTree: dtb)
    let role = args.text("role", default: "guest")
    let (major, minor) = Xen.version
    let extra = String(decoding: Xen.extraVersion, as: UTF8.self)
    print("hello: \(role) up, \(args.memoryBytes >> 20) MiB, hypervisor speaks Xen \(major).\(minor)\(extra)")
    Interrupts.start()
    let ticks = args.integer("ticks", default: 3)
    for i in 1 ... max(ticks, 1) {
        let before = Timer.milliseconds
        Timer.sleep(milliseconds: 20)
        print("hello: \(role) tick \(i) after \(Timer.milliseconds - before) ms")
        Xen.yield()
    }
    print("hello: \(role) done, powering off")
    switch args.text("exit", default: "xen") {
    case "psci": PSCI.systemOff()
    case "reboot": Xen.shutdown(.reboot)
    default: Xen.shutdown(.poweroff)
    }
}

@_cdecl("guest_secondary_main")
func guestSecondaryMain(_ index: UInt64) {}
