// Where things are in a domU's guest physical address space. These are Xen's values
// (xen/include/public/arch-arm.h), so a guest written for Xen finds its devices where it expects.

public enum GuestLayout {
    public static let gicDistributor = GuestPhysicalAddress(0x0300_1000)
    public static let gicDistributorSize: UInt64 = 0x10000
    public static let gicRedistributors = GuestPhysicalAddress(0x0302_0000)
    public static let gicRedistributorsSize: UInt64 = 0x100_0000
    public static let uart = GuestPhysicalAddress(0x2200_0000)
    public static let uartSize: UInt64 = 0x1000
    public static let uartSPI: UInt32 = 32
    public static let grantTable = GuestPhysicalAddress(0x3800_0000)
    public static let grantTableSize: UInt64 = 0x100_0000
    public static let ram = GuestPhysicalAddress(0x4000_0000)
    /// RAM bank 0 ends below 4 GiB (Xen: GUEST_RAM0_SIZE = 3 GiB).
    public static let ramMaximum: UInt64 = 0xC000_0000
    /// Xen's second RAM bank (GUEST_RAM1_BASE, _SIZE). Tern puts no RAM there; its extended regions do.
    public static let ram1 = GuestPhysicalAddress(0x2_0000_0000)
    public static let ram1Maximum: UInt64 = 0xFE_0000_0000
    /// The guest physical address bits of Tern's stage 2 (39: VTCR_EL2.T0SZ 25).
    public static let addressBits = 39
    /// PPIs: the virtual and EL1 physical timers, and Xen's event-channel upcall.
    public static let virtualTimerPPI: UInt32 = 27
    public static let physicalTimerPPI: UInt32 = 30
    public static let eventChannelPPI: UInt32 = 31
    /// The device tree goes at the top of RAM, 2 MiB aligned (as Xen places it), the initrd below it.
    public static let deviceTreeMaximum: UInt64 = 0x20_0000
}
