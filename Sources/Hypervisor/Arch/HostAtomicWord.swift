// TernCore's AtomicWord in the hypervisor: a 32-bit word in its own memory, loaded with LDAR and
// changed with a compare-and-swap.
import TernArchAsm
import TernCore

struct HostAtomicWord: AtomicWord {
    let address: UInt64

    @inline(__always) init(_ pointer: UnsafeMutablePointer<UInt32>) {
        address = UInt64(UInt(bitPattern: pointer))
    }

    @inline(__always) func load() -> UInt32 { tern_load_ordered32(address) }

    @inline(__always) func compareExchange(expected: UInt32, desired: UInt32) -> UInt32 {
        tern_compare_exchange32(address, expected, desired)
    }
}
