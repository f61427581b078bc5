import TernArchAsm

@_cdecl("tern_main")
public func ternMain(_ dtb: UInt64) -> Never {
    print("Tern hypervisor starting")
    while true { tern_wfi() }
}

@_cdecl("tern_secondary_main")
public func ternSecondaryMain(_ cpu: UInt64) -> Never {
    while true { tern_wfi() }
}

@_cdecl("tern_trap")
public func ternTrap(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> UnsafeMutablePointer<tern_frame> {
    frame
}

@_cdecl("tern_fatal")
public func ternFatal(_ frame: UnsafeMutablePointer<tern_frame>, _ kind: UInt64) -> Never {
    print("fatal")
    while true { tern_wfi() }
}
