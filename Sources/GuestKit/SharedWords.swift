// Words a guest's vCPUs share (counters, flags one vCPU sets for the others): read, written and
// incremented in one access each, the compiler kept from caching them in a register.
import GuestKitAsm

public func atomicLoad(_ word: UnsafeMutablePointer<UInt64>) -> UInt64 { guest_load64(UInt64(UInt(bitPattern: word))) }
public func atomicStore(_ word: UnsafeMutablePointer<UInt64>, _ value: UInt64) { guest_store64(UInt64(UInt(bitPattern: word)), value) }
public func atomicAdd(_ word: UnsafeMutablePointer<UInt64>) { _ = guest_fetch_add64(UInt64(UInt(bitPattern: word)), 1) }
