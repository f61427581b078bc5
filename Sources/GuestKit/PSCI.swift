// PSCI through the hypervisor (method "hvc" in the device tree Tern generates).
import GuestKitAsm
import TernCore

public enum PSCI {
    public static func call(_ fn: PSCIFunction, _ a1: UInt64 = 0, _ a2: UInt64 = 0, _ a3: UInt64 = 0) -> Int64 {
        guest_hvc0(UInt64(fn.rawValue), a1, a2, a3)
    }

    /// Starts vCPU `index` at the kit's secondary entry, which calls `guest_secondary_main(index)`.
    public static func startVCPU(_ index: Int) -> Int64 {
        call(.cpu_on, CPUAffinity(vcpu: index).raw, guest_secondary_entry_address(), UInt64(index))
    }

    public static func isOn(_ index: Int) -> Bool { call(.affinity_info, CPUAffinity(vcpu: index).raw) == 0 }

    public static func stopThisVCPU() -> Never {
        _ = call(.cpu_off)
        while true { guest_wfi() }
    }

    public static func systemOff() -> Never {
        _ = call(.system_off)
        while true { guest_wfi() }
    }
}
