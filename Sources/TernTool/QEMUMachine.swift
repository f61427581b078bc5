import Foundation

/// The QEMU machine Tern runs on and the command lines that start it. The same machine options are used
/// to dump QEMU's device tree and to boot, because the tree describes exactly that machine (CPUs, RAM
/// size, GIC) and the hypervisor believes it.
public struct QEMUMachine: Equatable, Sendable {
    public var cpus: Int
    public var memoryMiB: Int

    public init(cpus: Int, memoryMiB: Int) {
        self.cpus = cpus
        self.memoryMiB = memoryMiB
    }

    /// EL2 for the hypervisor (virtualization=on) and a GICv3, which is the only interrupt controller
    /// Tern drives.
    static let board = "virt,virtualization=on,gic-version=3"

    /// QEMU's console escape moves from CTRL-a to CTRL-] (CTRL-] x quits), so CTRL-a reaches Tern,
    /// which uses it as Xen does: three in a row move the console's input to the next domain.
    private var common: [String] {
        ["-cpu", "cortex-a57", "-smp", String(cpus), "-m", String(memoryMiB), "-nographic", "-echr", "0x1d", "-nic", "none"]
    }

    /// QEMU writes the tree it would have given the guest and exits at once.
    public func dumpArguments(to dtb: URL) -> [String] {
        ["-M", "\(Self.board),dumpdtb=\(Self.escape(dtb.path))"] + common
    }

    /// -no-reboot turns the hypervisor's PSCI SYSTEM_RESET into an exit, so a run always ends.
    public func bootArguments(dtb: URL, hypervisor: URL, modules: [BootModule], extra: [String] = []) -> [String] {
        var arguments = ["-M", Self.board] + common + ["-no-reboot", "-dtb", dtb.path, "-kernel", hypervisor.path]
        for module in modules {
            arguments += ["-device", "loader,file=\(Self.escape(module.file.path)),addr=0x\(String(module.address, radix: 16)),force-raw=on"]
        }
        return arguments + extra
    }

    /// In QEMU's option syntax a comma separates options; a literal comma in a value is doubled.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: ",", with: ",,")
    }
}
