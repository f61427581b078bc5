import Testing
@testable import TernCore

/// ESR_EL2 as the hardware reports the traps Tern handles (encodings from the Arm ARM).
@Suite struct ExceptionSyndromeTests {
    @Test func aXenHypercallIsHVC64WithItsImmediate() {
        let esr = ExceptionSyndrome(0x16 << 26 | 1 << 25 | 0xEA1)      // hvc #0xea1
        #expect(esr.exceptionClass == ExceptionClass.hvc64)
        #expect(esr.iss & 0xFFFF == 0xEA1)
        #expect(esr.instructionIs32Bit)
        #expect(ExceptionClass.name(esr.exceptionClass).description == "HVC")
        #expect(ExceptionClass.name(0x3F).description == "unrecognised exception class")
    }

    @Test func aDataAbortDescribesTheAccess() {
        // ldr w1, [x0]: ISV, SAS = word, SRT = 1, 32-bit register, read; translation fault, level 3.
        let load = DataAbort(iss: 1 << 24 | 2 << 22 | 1 << 16 | 0x07)
        #expect(load.isValid && !load.isWrite)
        #expect(load.size == 4 && load.register == 1 && !load.is64BitRegister && !load.signExtend)
        #expect(load.faultStatus == 0x07)
        #expect(load.loadedValue(0xFFFF_FFFF_8000_0001) == 0x8000_0001)
        // str x5, [x2]: doubleword, SRT = 5, 64-bit register, write.
        let store = DataAbort(iss: 1 << 24 | 3 << 22 | 5 << 16 | 1 << 15 | 1 << 6 | 0x07)
        #expect(store.isWrite && store.size == 8 && store.register == 5 && store.is64BitRegister)
        // ldrsb x3, [x4]: byte, sign-extended into a 64-bit register; ldrsh w3 into a 32-bit one.
        let signedByte = DataAbort(iss: 1 << 24 | 0 << 22 | 1 << 21 | 3 << 16 | 1 << 15)
        #expect(signedByte.loadedValue(0x80) == 0xFFFF_FFFF_FFFF_FF80)
        let signedHalf = DataAbort(iss: 1 << 24 | 1 << 22 | 1 << 21 | 3 << 16)
        #expect(signedHalf.loadedValue(0x8000) == 0xFFFF_8000)
        // No ISV (a load pair, say): nothing to emulate from the syndrome.
        #expect(!DataAbort(iss: 0x07).isValid)
    }

    @Test func aTrappedSystemRegisterNamesItsEncodingAndDirection() {
        // msr icc_sgi1r_el1, x2: Op0 3, Op2 5, Op1 0, CRn 12, Rt 2, CRm 11, write.
        let sgi = SystemRegisterAccess(iss: 3 << 20 | 5 << 17 | 0 << 14 | 12 << 10 | 2 << 5 | 11 << 1)
        #expect(sgi.encoding == SystemRegister.icc_sgi1r_el1 && !sgi.isRead && sgi.register == 2)
        // mrs x7, cntp_ctl_el0: Op0 3, Op2 1, Op1 3, CRn 14, Rt 7, CRm 2, read.
        let ctl = SystemRegisterAccess(iss: 3 << 20 | 1 << 17 | 3 << 14 | 14 << 10 | 7 << 5 | 2 << 1 | 1)
        #expect(ctl.encoding == SystemRegister.cntp_ctl_el0 && ctl.isRead && ctl.register == 7)
        #expect(SystemRegister.cntp_cval_el0 != SystemRegister.cntp_tval_el0)
    }
}
