// The seam under interrupt delivery's decisions: which vCPUs a domain has and which of them are on.
// Logic that decides who gets an interrupt (an SGI's targets) asks it and answers with vCPU indices;
// the hypervisor then raises them (a list register here, a kick of another CPU, a wake-up). In the
// hypervisor it is a domain's vCPU array; in host tests a fake with the vCPUs a test says are on.

public protocol VirtualCPUs {
    /// The domain's vCPUs are 0 ..< vcpuCount.
    var vcpuCount: Int { get }
    /// Whether `vcpu` is on (PSCI CPU_ON'd, or the boot vCPU).
    func isOnline(_ vcpu: Int) -> Bool
}
