// ESR_EL2 decoded: why a guest left EL1 and, for data aborts, everything needed to emulate the access
// without reading the guest's instruction.

public struct ExceptionSyndrome {
    public var raw: UInt64
    @inlinable public init(_ raw: UInt64) { self.raw = raw }
    @inlinable public var exceptionClass: UInt64 { raw >> 26 & 0x3F }
    @inlinable public var iss: UInt64 { raw & 0x1FF_FFFF }
    @inlinable public var instructionIs32Bit: Bool { raw & (1 << 25) != 0 }
}

public enum ExceptionClass {
    public static let unknown: UInt64 = 0x00
    public static let wfx: UInt64 = 0x01
    public static let fpAccess: UInt64 = 0x07
    public static let hvc64: UInt64 = 0x16
    public static let smc64: UInt64 = 0x17
    public static let sysreg: UInt64 = 0x18
    public static let instructionAbortLower: UInt64 = 0x20
    public static let instructionAbortSame: UInt64 = 0x21
    public static let dataAbortLower: UInt64 = 0x24
    public static let dataAbortSame: UInt64 = 0x25
    public static let serror: UInt64 = 0x2F

    public static func name(_ ec: UInt64) -> StaticString {
        switch ec {
        case 0x00: "unknown reason"
        case 0x01: "WFI/WFE"
        case 0x07: "FP/SIMD access"
        case 0x0E: "illegal execution state"
        case 0x15: "SVC"
        case 0x16: "HVC"
        case 0x17: "SMC"
        case 0x18: "system register access"
        case 0x20: "instruction abort from a lower EL"
        case 0x21: "instruction abort at EL2"
        case 0x22: "PC alignment fault"
        case 0x24: "data abort from a lower EL"
        case 0x25: "data abort at EL2"
        case 0x26: "SP alignment fault"
        case 0x2F: "SError"
        case 0x3C: "BRK"
        default: "unrecognised exception class"
        }
    }
}

/// A trapped load or store, as the ISS of a data abort describes it (valid when `isValid`).
public struct DataAbort {
    public var iss: UInt64
    @inlinable @inline(__always) public init(iss: UInt64) { self.iss = iss }
    @inlinable @inline(__always) public var isValid: Bool { iss & (1 << 24) != 0 }
    /// Access size in bytes.
    @inlinable @inline(__always) public var size: Int { 1 << Int(iss >> 22 & 3) }
    @inlinable @inline(__always) public var signExtend: Bool { iss & (1 << 21) != 0 }
    @inlinable @inline(__always) public var register: Int { Int(iss >> 16 & 31) }
    @inlinable @inline(__always) public var is64BitRegister: Bool { iss & (1 << 15) != 0 }
    @inlinable @inline(__always) public var isWrite: Bool { iss & (1 << 6) != 0 }
    /// Fault status: translation/access/permission faults at stage 2 all mean "not mapped for you".
    @inlinable @inline(__always) public var faultStatus: UInt64 { iss & 0x3F }

    /// The value a load puts into the register, given the bytes read.
    @inlinable @inline(__always) public func loadedValue(_ raw: UInt64) -> UInt64 {
        var v = raw
        if size < 8 { v &= (1 << UInt64(size * 8)) - 1 }
        if signExtend && size < 8 {
            let shift = UInt64(64 - size * 8)
            v = UInt64(bitPattern: Int64(bitPattern: v << shift) >> Int64(shift))
        }
        if !is64BitRegister { v &= 0xFFFF_FFFF }
        return v
    }
}

/// A trapped MRS/MSR (EC 0x18), with the register encoded as op0:op1:CRn:CRm:op2.
public struct SystemRegisterAccess {
    public var iss: UInt64
    @inlinable public init(iss: UInt64) { self.iss = iss }
    @inlinable public var isRead: Bool { iss & 1 != 0 }
    @inlinable public var register: Int { Int(iss >> 5 & 31) }
    /// op0, op1, CRn, CRm, op2 packed the way `sysreg(...)` builds it.
    @inlinable public var encoding: UInt32 {
        let op0 = UInt32(iss >> 20 & 3), op2 = UInt32(iss >> 17 & 7), op1 = UInt32(iss >> 14 & 7)
        let crn = UInt32(iss >> 10 & 15), crm = UInt32(iss >> 1 & 15)
        return sysreg(op0, op1, crn, crm, op2)
    }
}

@inlinable public func sysreg(_ op0: UInt32, _ op1: UInt32, _ crn: UInt32, _ crm: UInt32, _ op2: UInt32) -> UInt32 {
    op0 << 14 | op1 << 11 | crn << 7 | crm << 3 | op2
}

public enum SystemRegister {
    public static let icc_sgi1r_el1 = sysreg(3, 0, 12, 11, 5)
    public static let icc_asgi1r_el1 = sysreg(3, 0, 12, 11, 6)
    public static let icc_sgi0r_el1 = sysreg(3, 0, 12, 11, 7)
    /// The EL1 physical timer, which traps (CNTHCTL_EL2.EL1PCEN = 0) and Tern emulates per vCPU.
    public static let cntp_tval_el0 = sysreg(3, 3, 14, 2, 0)
    public static let cntp_ctl_el0 = sysreg(3, 3, 14, 2, 1)
    public static let cntp_cval_el0 = sysreg(3, 3, 14, 2, 2)
}
