// The device tree a domain boots with: the machine as Tern presents it (memory, vCPUs, GICv3, timer,
// PSCI), in the same shape Xen gives its dom0less domUs, so Linux's own drivers bind unchanged.

public struct GuestMachine {
    public var memory: [(base: GuestPhysicalAddress, size: UInt64)]
    public var vcpus: Int
    public var bootargs: [UInt8]
    public var initrd: (start: GuestPhysicalAddress, end: GuestPhysicalAddress)?
    /// Random bytes for /chosen/rng-seed (BootEntropy), which Linux credits to its RNG at once.
    public var rngSeed: [UInt8]?
    /// Its RAM is at its host address (Tern's Linux dom0), not in Xen's guest banks: its address
    /// space is the host's, where Xen's domU holes would overlap RAM and devices.
    public var directMapped: Bool
    public var xen: Bool
    /// An emulated SBSA UART at GuestLayout.uart (Xen's vpl011).
    public var uart: Bool
    /// The board's PL031 real-time clock, passed through at this address (the control domain's).
    public var rtc: GuestPhysicalAddress?
    /// How many times the hypervisor has rebuilt this domain for its config's `restart`, as
    /// /chosen/tern,restarts (absent at 0). Tern's own: Xen's toolstack gives a restarted domain a new
    /// ID instead; a guest that wants to do something else the next time (the fuzzer: the next seed)
    /// reads it.
    public var restarts = 0

    public init(memory: [(base: GuestPhysicalAddress, size: UInt64)], vcpus: Int, bootargs: [UInt8],
                initrd: (start: GuestPhysicalAddress, end: GuestPhysicalAddress)? = nil, rngSeed: [UInt8]? = nil,
                directMapped: Bool = false, xen: Bool = false,
                uart: Bool = false, rtc: GuestPhysicalAddress? = nil) {
        self.memory = memory
        self.vcpus = vcpus
        self.bootargs = bootargs
        self.initrd = initrd
        self.rngSeed = rngSeed
        self.directMapped = directMapped
        self.xen = xen
        self.uart = uart
        self.rtc = rtc
    }
}

public enum GuestDeviceTree {
    static let gicPhandle: UInt32 = 1
    static let clockPhandle: UInt32 = 2

    /// Xen 4.17's extended regions (its find_domU_holes, and libxl's for the domains it builds): in each
    /// guest RAM bank, from the end of the domain's RAM there (2 MiB up) to the bank's end within the
    /// stage 2's reach, where that is at least 64 MiB. A Linux with unpopulated-alloc maps foreign and
    /// granted pages there instead of ballooning out RAM.
    public static func extendedRegions(ram: [(base: GuestPhysicalAddress, size: UInt64)]) -> [(address: UInt64, size: UInt64)] {
        let reach = UInt64(1) << UInt64(GuestLayout.addressBits)
        var regions: [(address: UInt64, size: UInt64)] = []
        for (base, size) in [(GuestLayout.ram.raw, GuestLayout.ramMaximum), (GuestLayout.ram1.raw, GuestLayout.ram1Maximum)] {
            let used = ram.filter { $0.base.raw >= base && $0.base.raw - base < size }.reduce(UInt64(0)) { $0 + $1.size }
            let start = base + (used + 0x1F_FFFF) & ~UInt64(0x1F_FFFF)
            let end = min(base + size, reach)
            if end > start && end - start >= 64 << 20 { regions.append((start, end - start)) }
        }
        return regions
    }

    public static func build(_ m: GuestMachine) -> [UInt8] {
        let root = DTNode(name: [])
        root.set("#address-cells", u32: 2)
        root.set("#size-cells", u32: 2)
        root.set("compatible", strings: [utf8Bytes("xen,xenvm-4.17"), utf8Bytes("xen,xenvm")])
        root.set("model", string: "XENVM-4.17")
        root.set("interrupt-parent", u32: gicPhandle)

        let chosen = root.addChild(DTNode("chosen"))
        chosen.set("bootargs", string: m.bootargs)
        if let initrd = m.initrd {
            chosen.set("linux,initrd-start", u64: initrd.start.raw)
            chosen.set("linux,initrd-end", u64: initrd.end.raw)
        }
        if let seed = m.rngSeed { chosen.set("rng-seed", bytes: seed) }
        if m.restarts > 0 { chosen.set("tern,restarts", u32: UInt32(clamping: m.restarts)) }

        for bank in m.memory {
            let mem = root.addChild(DTNode(name: utf8Bytes("memory@") + hex(bank.base.raw)))
            mem.set("device_type", string: "memory")
            mem.setReg([(bank.base.raw, bank.size)], addressCells: 2, sizeCells: 2)
        }

        let cpus = root.addChild(DTNode("cpus"))
        cpus.set("#address-cells", u32: 1)
        cpus.set("#size-cells", u32: 0)
        for i in 0 ..< m.vcpus {
            let reg = CPUAffinity(vcpu: i).raw
            let cpu = cpus.addChild(DTNode(name: utf8Bytes("cpu@") + hex(reg)))
            cpu.set("device_type", string: "cpu")
            cpu.set("compatible", string: "arm,armv8")
            cpu.set("enable-method", string: "psci")
            cpu.set("reg", u32: UInt32(reg))
        }

        let psci = root.addChild(DTNode("psci"))
        psci.set("compatible", strings: [utf8Bytes("arm,psci-1.0"), utf8Bytes("arm,psci-0.2"), utf8Bytes("arm,psci")])
        psci.set("method", string: "hvc")
        psci.set("cpu_off", u32: 0x8400_0002)
        psci.set("cpu_on", u32: 0xC400_0003)

        let gic = root.addChild(DTNode(name: utf8Bytes("interrupt-controller@") + hex(GuestLayout.gicDistributor.raw)))
        gic.set("compatible", string: "arm,gic-v3")
        gic.set("#interrupt-cells", u32: 3)
        gic.set("#address-cells", u32: 2)
        gic.set("#size-cells", u32: 2)
        gic.setEmpty("interrupt-controller")
        gic.set("#redistributor-regions", u32: 1)
        gic.setReg([(GuestLayout.gicDistributor.raw, GuestLayout.gicDistributorSize),
                    (GuestLayout.gicRedistributors.raw, UInt64(m.vcpus) * VirtualRedistributor.stride)],
                   addressCells: 2, sizeCells: 2)
        gic.set("phandle", u32: gicPhandle)
        gic.set("linux,phandle", u32: gicPhandle)

        // Secure physical, non-secure physical, virtual, hypervisor: PPIs 13, 14, 11, 10, level-low.
        let timer = root.addChild(DTNode("timer"))
        timer.set("compatible", strings: [utf8Bytes("arm,armv8-timer"), utf8Bytes("arm,armv7-timer")])
        timer.set("interrupts", cells: [1, 13, 0xF08, 1, 14, 0xF08, 1, 11, 0xF08, 1, 10, 0xF08])
        timer.set("interrupt-parent", u32: gicPhandle)
        timer.setEmpty("always-on")

        if m.xen {
            // What tells Linux it runs on Xen (arch/arm/xen: xen_early_init, xen_dt_guest_init): the
            // version in the compatible, the grant-table window and the extended regions in reg, the
            // event-channel upcall PPI.
            let hypervisor = root.addChild(DTNode("hypervisor"))
            hypervisor.set("compatible", strings: [utf8Bytes("xen,xen-4.17"), utf8Bytes("xen,xen")])
            var reg: [(address: UInt64, size: UInt64)] = [(GuestLayout.grantTable.raw, GuestLayout.grantTableSize)]
            // A direct-mapped domain gets none (Xen would look for holes in the host's map instead):
            // Linux then balloons RAM out for foreign and granted pages, as it does without them.
            if !m.directMapped { reg += extendedRegions(ram: m.memory) }
            hypervisor.setReg(reg, addressCells: 2, sizeCells: 2)
            hypervisor.set("interrupts", cells: [1, GuestLayout.eventChannelPPI - 16, 0xF08])
            hypervisor.set("interrupt-parent", u32: gicPhandle)
        }

        if m.uart {
            // Named and shaped as Xen's vpl011 node, so `console=ttyAMA0` and a bare `earlycon` work.
            let path = utf8Bytes("/sbsa-uart@") + hex(GuestLayout.uart.raw)
            let uart = root.addChild(DTNode(name: Array(path.dropFirst())))
            uart.set("compatible", string: "arm,sbsa-uart")
            uart.setReg([(GuestLayout.uart.raw, VirtualUART.size)], addressCells: 2, sizeCells: 2)
            uart.set("interrupts", cells: [0, GuestLayout.uartSPI - 32, 4])
            uart.set("interrupt-parent", u32: gicPhandle)
            uart.set("current-speed", u32: 115200)
            chosen.set("stdout-path", string: path)
            let aliases = root.addChild(DTNode("aliases"))
            aliases.set("serial0", string: path)
        }

        if let rtc = m.rtc {
            // An AMBA device: Linux reads its ID registers with its bus clock on, so the clock must be
            // named; a fixed clock stands in for the board's. No interrupt: the alarm stays unused.
            let clock = root.addChild(DTNode("apb-pclk"))
            clock.set("compatible", string: "fixed-clock")
            clock.set("#clock-cells", u32: 0)
            clock.set("clock-frequency", u32: 24_000_000)
            clock.set("clock-output-names", string: "clk24mhz")
            clock.set("phandle", u32: clockPhandle)
            let node = root.addChild(DTNode(name: utf8Bytes("pl031@") + hex(rtc.raw)))
            node.set("compatible", strings: [utf8Bytes("arm,pl031"), utf8Bytes("arm,primecell")])
            node.setReg([(rtc.raw, 0x1000)], addressCells: 2, sizeCells: 2)
            node.set("clocks", u32: clockPhandle)
            node.set("clock-names", string: "apb_pclk")
        }

        return FlattenedDeviceTree.serialize(root)
    }

    static func hex(_ v: UInt64) -> [UInt8] {
        if v == 0 { return [UInt8(ascii: "0")] }
        var out: [UInt8] = []
        var x = v
        while x != 0 {
            let d = UInt8(x & 0xF)
            out.append(d < 10 ? UInt8(ascii: "0") + d : UInt8(ascii: "a") + d - 10)
            x >>= 4
        }
        return out.reversed()
    }
}
