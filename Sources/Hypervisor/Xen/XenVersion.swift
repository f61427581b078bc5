// xen_version: the version guests check first (answered inline: it is the null hypercall guests
// measure), and what Linux shows in /sys/hypervisor: TernCore's XenVersionOp, behind the seam.
import TernArchAsm
import TernCore

/// XENVER_version is the null hypercall guests measure and poll: answered inline, with no frame of its own.
@inline(__always)
func xenVersion(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    command == XenVersionCommand.version.rawValue ? xenMajor << 16 | xenMinor : xenVersionQuery(command, arg, v)
}

@inline(never)
private func xenVersionQuery(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    // An extraversion buffer inside one page takes one translation and two stores (a measured case).
    if command == XenVersionCommand.extraversion.rawValue, arg.raw & 7 == 0, arg.raw & 0xFFF <= 0xFF0,
       let pa = GuestMemory.translate(arg, write: true) {
        tern_store64(pa.raw, XenVersionOp.extraversionWord)
        tern_store64(pa.raw + 8, 0)
        return 0
    }
    return xenVersionAnswer(command, arg, v)
}

// Apart from the fast path above, so that its prologue stays as small as the fast path needs.
@inline(never)
private func xenVersionAnswer(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    var memory = RunningGuestMemory()
    return XenVersionOp.query(command, arg, &memory,
                              caller: .init(privileged: v.domain.privileged, directMapped: v.domain.spec.directMapped,
                                            dom0MemoryMiB: dom0Size.memoryMiB, dom0VCPUs: dom0Size.vcpus))
}

/// The boot configuration's control domain's size, for XENVER_commandline (XenVersionOp.writeCommandLine).
nonisolated(unsafe) var dom0Size = (memoryMiB: 0, vcpus: 0)
