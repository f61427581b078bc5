// Xen's hypercalls: `hvc #0xEA1`, number in x16, arguments in x0-x4, result in x0. Anything Tern does
// not implement answers -ENOSYS, as Xen does for hypercalls it was built without; bad arguments get
// Xen's error codes and never reach anything but the calling domain.
import TernArch
import TernArchAsm
import TernCore

@inline(__always)
func hypercall(_ v: VCPU) -> Resume {
    let f = v.frame
    let result: UInt64
    switch f.pointee.x.16 {
    case Hypercall.xen_version.rawValue:
        result = xenVersion(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.console_io.rawValue:
        result = consoleIO(f.pointee.x.0, f.pointee.x.1, VirtualAddress(f.pointee.x.2), v)
    case Hypercall.sched_op.rawValue:
        return schedOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.vcpu_op.rawValue:
        result = vcpuOp(f.pointee.x.0, f.pointee.x.1, VirtualAddress(f.pointee.x.2), v)
    case Hypercall.event_channel_op.rawValue:
        result = eventChannelOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.memory_op.rawValue:
        result = memoryOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.grant_table_op.rawValue:
        result = grantTableOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), f.pointee.x.2, v)
    case Hypercall.hvm_op.rawValue:
        result = hvmOp(f.pointee.x.0, VirtualAddress(f.pointee.x.1), v)
    case Hypercall.platform_op.rawValue:
        result = platformOp(VirtualAddress(f.pointee.x.0), v)
    case Hypercall.vm_assist.rawValue:
        result = vmAssist(f.pointee.x.0, f.pointee.x.1, v.domain)
    default:
        result = XenError.ENOSYS.returnValue
    }
    if result == XenError.ENOSYS.returnValue { reportUnimplemented(v.domain, f.pointee.x.16, f.pointee.x.0) }
    f.pointee.x.0 = result
    return f
}

/// Says once per domain which hypercall it wanted and did not get: the first thing to look at when a
/// guest misbehaves under Tern but not under Xen.
private func reportUnimplemented(_ d: Domain, _ number: UInt64, _ argument: UInt64) {
    // platform_op, sysctl and domctl take one structure whose first field is the command.
    let inStructure = number == 7 || number == 35 || number == 36
    let command = inStructure ? GuestMemory.load32(VirtualAddress(argument)).map { UInt64($0) } : argument
    let key = number << 32 | (command ?? 0xFFFF_FFFF) & 0xFFFF_FFFF
    let first = d.withXen {
        if d.reportedUnimplemented.contains(key) || d.reportedUnimplemented.count >= 32 { return false }
        d.reportedUnimplemented.append(key)
        return true
    }
    guard first else { return }
    log { c in
        c.domain(d)
        c.s(": hypercall ")
        c.dec(number)
        if let command {
            c.s(" command ")
            c.dec(command)
        }
        c.s(" is not implemented (-ENOSYS)")
    }
}

/// XENVER_version is the null hypercall guests measure and poll: answered inline, with no frame of its own.
@inline(__always)
private func xenVersion(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    command == XenVersionCommand.version.rawValue ? xenMajor << 16 | xenMinor : xenVersionQuery(command, arg, v)
}

@inline(never)
private func xenVersionQuery(_ command: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    switch command {
    case XenVersionCommand.extraversion.rawValue:
        // xen_extraversion_t: char[16], NUL-padded: "-tern" as two little-endian words. A buffer
        // inside one page takes one translation and two stores; any other goes through the page walk.
        let words: (UInt64, UInt64) = (0x6E_7265_742D, 0)
        if arg.raw & 7 == 0, arg.raw & 0xFFF <= 0xFF0, let pa = GuestMemory.translate(arg, write: true) {
            tern_store64(pa.raw, words.0)
            tern_store64(pa.raw + 8, words.1)
            return 0
        }
        return GuestMemory.write(words, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.get_features.rawValue:
        // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
        guard let index = GuestMemory.load32(arg) else { return XenError.EFAULT.returnValue }
        var submap: UInt32 = 0
        if index == 0 {
            submap = 1 << XenFeature.writable_page_tables.rawValue | 1 << XenFeature.auto_translated_physmap.rawValue
                | 1 << XenFeature.ARM_SMCCC_supported.rawValue
            if v.domain.privileged { submap |= 1 << XenFeature.dom0.rawValue }
            // Linux picks swiotlb-xen (bounce buffers for DMA by host address) only when direct-mapped.
            submap |= 1 << (v.domain.spec.directMapped ? XenFeature.direct_mapped : XenFeature.not_direct_mapped).rawValue
        }
        return GuestMemory.store32(arg + 4, submap) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.pagesize.rawValue:
        return pageSize
    // What Linux shows under /sys/hypervisor: honest about being Tern, in Xen's shapes.
    case XenVersionCommand.compile_info.rawValue:
        let L = XenVersionLayout.self
        return GuestMemory.writeText("Swift 6.3 (Embedded)", size: L.compilerSize, to: arg + UInt64(L.compiler))
            && GuestMemory.writeText("tern", size: L.compileBySize, to: arg + UInt64(L.compileBy))
            && GuestMemory.writeText("", size: L.compileDomainSize, to: arg + UInt64(L.compileDomain))
            && GuestMemory.writeText("", size: L.compileDateSize, to: arg + UInt64(L.compileDate)) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.capabilities.rawValue:
        // Xen on arm64 also lists "xen-3.0-armv7l"; Tern runs 64-bit guests only.
        return GuestMemory.writeText("xen-3.0-aarch64 ", size: XenVersionLayout.capabilitiesSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.changeset.rawValue:
        return GuestMemory.writeText("tern-0.1.0", size: XenVersionLayout.changesetSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.platform_parameters.rawValue:
        // struct xen_platform_parameters { xen_ulong_t virt_start; }: no hypervisor hole in an Arm guest.
        return GuestMemory.write(UInt64(0), to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.guest_handle.rawValue:
        // xen_domain_handle_t: the toolstack's UUID for the domain; Tern's domains have none yet.
        return GuestMemory.writeText("", size: XenVersionLayout.guestHandleSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.commandline.rawValue:
        guard v.domain.privileged else { return XenError.EPERM.returnValue }
        return GuestMemory.writeText("", size: XenVersionLayout.commandLineSize, to: arg) ? 0 : XenError.EFAULT.returnValue
    case XenVersionCommand.build_id.rawValue:
        return XenError.ENODATA.returnValue       // Xen's answer when it was built without a build id
    default:
        return XenError.ENOSYS.returnValue
    }
}

/// What one hypercall does at EL2 at most before it lets the guest (and the scheduler) in again: the
/// rest is a continuation, as Xen makes one.
private let consoleBytesPerCall: UInt64 = 1024
let grantOperationsPerCall: UInt64 = 64

/// Xen's hypercall continuation on Arm: the call is made again, from its HVC, with `a1` and `a2` (what
/// is left of its batch) in place of x1 and x2. Returns what x0 must keep: the command.
func continueHypercall(_ v: VCPU, _ a1: UInt64, _ a2: UInt64) -> UInt64 {
    let f = v.frame
    f.pointee.x.1 = a1
    f.pointee.x.2 = a2
    f.pointee.elr &-= 4
    return f.pointee.x.0
}

private func consoleIO(_ command: UInt64, _ count: UInt64, _ buffer: VirtualAddress, _ v: VCPU) -> UInt64 {
    switch command {
    case ConsoleIOCommand.write.rawValue:
        var chunk: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                    UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var done: UInt64 = 0
        let now = min(count, consoleBytesPerCall)
        let result: UInt64 = withUnsafeMutableBytes(of: &chunk) { b in
            while done < now {
                let n = Int(min(now - done, UInt64(b.count)))
                guard GuestMemory.copy(from: buffer + done, count: n, into: b.baseAddress!) else {
                    return XenError.EFAULT.returnValue
                }
                v.domain.consoleWrite(UnsafeBufferPointer(start: b.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n))
                done += UInt64(n)
            }
            return 0
        }
        guard result == 0, count > now else { return result }
        return continueHypercall(v, count - now, (buffer + now).raw)
    case ConsoleIOCommand.read.rawValue:
        guard v.domain.privileged else { return XenError.EPERM.returnValue }
        var chunk: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &chunk) { b in
            let bytes = b.bindMemory(to: UInt8.self)
            let n = readControlInput(into: UnsafeMutableBufferPointer(rebasing: bytes[..<Int(min(count, UInt64(bytes.count)))]))
            guard GuestMemory.copy(to: buffer, from: b.baseAddress!, count: n) else { return XenError.EFAULT.returnValue }
            return UInt64(n)
        }
    default:
        return XenError.ENOSYS.returnValue
    }
}

private func vcpuOp(_ command: UInt64, _ target: UInt64, _ arg: VirtualAddress, _ v: VCPU) -> UInt64 {
    let d = v.domain
    guard target < UInt64(d.vcpus.count) else { return XenError.ENOENT.returnValue }
    let t = d.vcpus[Int(target)]
    switch command {
    case VCPUOpCommand.is_up.rawValue:
        return t.online ? 1 : 0
    case VCPUOpCommand.register_vcpu_info.rawValue where d.xenPV:
        return registerVCPUInfo(t, arg)
    case VCPUOpCommand.register_runstate_memory_area.rawValue where d.xenPV:
        return registerRunstate(t, arg)
    case VCPUOpCommand.get_runstate_info.rawValue where d.xenPV:
        return runstateInfo(t, arg)
    default:
        // Arm guests start and stop vCPUs with PSCI; Xen on Arm refuses the rest of these too.
        return XenError.EINVAL.returnValue
    }
}

/// struct vcpu_register_vcpu_info { uint64_t mfn; uint32_t offset, rsvd; }: the guest frame and offset
/// of the vCPU's vcpu_info, which must lie in its RAM within one page. Once per vCPU, as in Xen.
private func registerVCPUInfo(_ t: VCPU, _ arg: VirtualAddress) -> UInt64 {
    var request = (UInt64(0), UInt64(0))
    guard GuestMemory.read(&request, from: arg) else {
        return XenError.EFAULT.returnValue
    }
    let offset = request.1 & 0xFFFF_FFFF
    // 8-byte aligned: its pending selector is changed with 64-bit atomics, which fault when misaligned.
    guard request.0 >> 36 == 0, offset & 7 == 0, offset + UInt64(VCPUInfoLayout.size) <= pageSize else {
        return XenError.EINVAL.returnValue
    }
    guard let host = t.domain.hostAddress(ofRAM: GuestPhysicalAddress(request.0 << 12 + offset),
                                          length: UInt64(VCPUInfoLayout.size)) else { return XenError.EINVAL.returnValue }
    let d = t.domain
    let registered: Bool = d.withXen {
        if t.vcpuInfo != 0 { return false }
        // Carry over what the old place held, then say "look at everything", as Xen does, so nothing
        // that arrived before the move is lost.
        let old = t.index == 0 && d.sharedInfo != 0 ? d.sharedInfo + UInt64(SharedInfoLayout.vcpuInfo0) : 0
        if old != 0 { tern_copy(host, old, UInt64(VCPUInfoLayout.size)) } else { tern_zero(host, UInt64(VCPUInfoLayout.size)) }
        tern_store64(host + UInt64(VCPUInfoLayout.pendingSelector), .max)
        tern_store8(host + UInt64(VCPUInfoLayout.upcallPending), 1)
        tern_memory_barrier()
        t.vcpuInfo = host
        return true
    }
    guard registered else { return XenError.EINVAL.returnValue }
    raiseEventUpcall(t)
    return 0
}

