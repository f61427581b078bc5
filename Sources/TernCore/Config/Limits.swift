// How much Tern runs at once. The hypervisor and the tool share these, so the tool refuses what the hypervisor would not run.
public enum TernLimits {
    /// Physical CPUs the hypervisor brings up (QEMU's -smp, `tern run --smp`).
    public static let maximumCPUs = 32
    /// Domains, one per config file. The tables are a pointer a slot, and the scheduler's costs per
    /// switch do not grow with the count (its run queues are heaps), so this is far from a hard wall.
    public static let maximumDomains = 128
    /// vCPUs over all domains together.
    public static let maximumVCPUs = 512
    /// vCPUs of one domain (its config's "vcpus").
    public static let maximumVCPUsPerDomain = 8
}
