// How much Tern runs at once. The hypervisor and the tool share these, so the tool refuses what the hypervisor would not run.
public enum TernLimits {
    /// Physical CPUs the hypervisor brings up (QEMU's -smp, `tern run --smp`).
    public static let maximumCPUs = 32
    /// Domains, one per config file: as many as the VMIDs of `tern run`'s machine tell apart (see
    /// VMIDs). The hypervisor's tables grow to what is asked (up to its heap's largest block, which
    /// only 16-bit VMIDs could reach); beyond that only memory, which the tool checks too.
    public static let maximumDomains = VMIDs.cortexA57.domainLimit
    /// vCPUs of one domain (its config's "vcpus").
    public static let maximumVCPUsPerDomain = 8
}
