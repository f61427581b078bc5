// The machine as the boot device tree describes it. Tern reads the board instead of assuming it, so
// the same image runs on any QEMU `virt` shape (and, later, real boards).
import TernArch
import TernCore

struct Platform {
    var ram: [PhysicalRange] = []
    var uart = HostPhysicalAddress(0x0900_0000)
    /// The UART's receive interrupt (an SPI), when the tree names it.
    var uartInterrupt: UInt32?
    var gicDistributor = HostPhysicalAddress(0)
    var gicRedistributors = HostPhysicalAddress(0)
    var gicRedistributorsSize: UInt64 = 0
    /// MPIDR affinity of each CPU, boot CPU first as the tree lists them.
    var cpuAffinities: [CPUAffinity] = []
    var psciUsesHVC = false
    /// The PL031 real-time clock, when the board has one: read for the time of day at boot, and given
    /// to the control domain, as Xen gives dom0 the devices it does not use itself.
    var rtc: HostPhysicalAddress?

    enum Problem { case noMemory, noGIC, noCPUs }

    static func read(_ root: DTNode) -> (Platform?, Problem?) {
        var p = Platform()
        for node in root.children where node.baseName == utf8Bytes("memory") {
            for r in node.reg(in: root) where r.size > 0 {
                p.ram.append(PhysicalRange(base: HostPhysicalAddress(r.address), size: r.size))
            }
        }
        if p.ram.isEmpty { return (nil, .noMemory) }

        var uart: DTNode?
        if let stdout = root.node(atPath: "/chosen")?.property("stdout-path")?.string {
            uart = root.node(atPath: stdoutPath(stdout))
        }
        if let node = uart ?? root.findCompatible("arm,pl011").first, let r = node.reg(in: root).first {
            p.uart = HostPhysicalAddress(r.address)
            // interrupts = <type number flags>; type 0 is an SPI, numbered from INTID 32.
            if let cells = node.property("interrupts")?.cells, cells.count >= 2, cells[0] == 0 {
                p.uartInterrupt = cells[1] + 32
            }
        }

        guard let gic = root.findCompatible("arm,gic-v3").first else { return (nil, .noGIC) }
        let parent = root.parent(of: gic) ?? root
        let regs = gic.reg(in: parent)
        guard regs.count >= 2 else { return (nil, .noGIC) }
        p.gicDistributor = HostPhysicalAddress(regs[0].address)
        p.gicRedistributors = HostPhysicalAddress(regs[1].address)
        p.gicRedistributorsSize = regs[1].size

        if let cpus = root.child("cpus") {
            for cpu in cpus.children where cpu.property("device_type")?.string == utf8Bytes("cpu") {
                if let r = cpu.reg(in: cpus).first, let a = CPUAffinity(deviceTreeReg: r.address) { p.cpuAffinities.append(a) }
            }
        }
        if p.cpuAffinities.isEmpty { return (nil, .noCPUs) }
        if let rtc = root.findCompatible("arm,pl031").first, let r = rtc.reg(in: root).first {
            p.rtc = HostPhysicalAddress(r.address)
        }
        if let psci = root.findCompatible("arm,psci-0.2").first ?? root.findCompatible("arm,psci").first {
            p.psciUsesHVC = psci.property("method")?.string == utf8Bytes("hvc")
        }
        return (p, nil)
    }

    /// "stdout-path" may carry options after a colon ("/pl011@9000000:115200n8").
    private static func stdoutPath(_ s: [UInt8]) -> [UInt8] {
        if let colon = s.firstIndex(of: UInt8(ascii: ":")) { return Array(s[..<colon]) }
        return s
    }
}
