// Keys typed while the console's focus is on Tern itself (the stop after the last domain in the
// CTRL-a cycle) or sent by the toolstack (`xl debug-keys`, sysctl debug_keys), as Xen's debug keys: a
// look inside a running system without stopping it.
import TernArch
import TernArchAsm
import TernCore

func handleKeypress(_ key: UInt8) {
    switch key {
    case UInt8(ascii: "q"): dumpVCPUs()
    case UInt8(ascii: "m"): dumpMemory()
    case UInt8(ascii: "h"), UInt8(ascii: "?"):
        log("debug keys: 'q' dump every vCPU, 'm' memory, 'h' this help; CTRL-a three times to leave")
    default:
        break
    }
}

/// One line per vCPU: where it is, why it waits, what its virtual GIC holds.
private func dumpVCPUs() {
    lockScheduler()
    let t = now()
    for case let d? in domains {
        for v in d.vcpus {
            log { c in
                c.domain(d)
                c.s(" vcpu")
                c.dec(v.index)
                c.s(v.online ? " online" : " offline")
                switch v.blocked {
                case .none: c.s(v.runningOn >= 0 ? " running" : " runnable")
                case .wfi: c.s(" blocked(wfi)")
                case .schedBlock: c.s(" blocked(sched_op block)")
                case .paused: c.s(" paused")
                case .poll: c.s(" blocked(poll)")
                case .offline: c.s(" down")
                }
                if v.runningOn >= 0 {
                    c.s(" on pcpu")
                    c.dec(v.runningOn)
                }
                if v.wakeAt != .never {
                    c.s(" wake in ")
                    c.dec(Int(bitPattern: UInt(v.wakeAt.raw &- t.raw)))     // a far deadline shows as it wraps, never traps
                    c.s(" ns")
                }
                // Xen's runstate, in ms: where its time went (runnable is what another vCPU took).
                let r = v.runstate.words(at: t)
                c.s(" ms run/wait/blocked/down ")
                c.dec(r.2 / 1_000_000)
                c.s("/")
                c.dec(r.3 / 1_000_000)
                c.s("/")
                c.dec(r.4 / 1_000_000)
                c.s("/")
                c.dec(r.5 / 1_000_000)
                c.s(" pc ")
                c.hex(v.frame.pointee.elr)
                c.s(" enabled ")
                c.hex(UInt64(v.redistributor.enabled))
                c.s(" pending ")
                c.hex(UInt64(v.redistributor.pending))
                c.s(" spis ")
                c.hex(d.distributor.deliverable(to: v.index))
                if v.timerInFlight { c.s(" timer-irq-in-guest") }
                if v.runningOn < 0 {
                    c.s(" lrs")
                    withUnsafeBytes(of: v.vgic.pointee.lr) { lrs in
                        for i in 0 ..< 4 {
                            c.s(" ")
                            c.hex(lrs.load(fromByteOffset: i * 8, as: UInt64.self))
                        }
                    }
                    c.s(" cntv_ctl ")
                    c.hex(v.el1.pointee.cntv_ctl)
                }
            }
        }
    }
    for cpu in cpus where cpu.online {
        log { c in
            c.s("pcpu")
            c.dec(cpu.index)
            if let v = cpu.current {
                c.s(" runs ")
                c.domain(v.domain)
                c.s(" vcpu")
                c.dec(v.index)
            } else {
                c.s(" idle")
            }
            if !cpu.virtualTimerPPIEnabled { c.s(", virtual timer PPI held") }
        }
    }
    unlockScheduler()
}

/// Where the machine's RAM is: free, given to domains, and what the hypervisor keeps (its image,
/// tables, stacks, heap and the boot modules it holds for restarts), in KiB as Xen's 'm' key reports.
private func dumpMemory() {
    lockScheduler()
    let total = platform.ram.reduce(UInt64(0)) { $0 + $1.size } / 1024
    let free = UInt64(withSpinLock(&framesLock) { frames.freePages }) * pageSize / 1024
    var given: UInt64 = 0
    for case let d? in domains {
        let (pieces, foreign) = d.physMap.withLock { ($0.ramPieceCount, $0.foreign.count) }
        let kib = (d.memory.size + UInt64(pieces) * ramPieceSize) / 1024
        given += kib
        // What a domain maps of others' is what keeps a destroyed one's memory from going back.
        log { c in
            c.domain(d)
            c.s(": ")
            c.dec(kib)
            c.s(" KiB")
            if d.dying { c.s(", dying") }
            c.s(", maps ")
            c.dec(foreign)
            c.s(" foreign pages")
        }
    }
    unlockScheduler()
    log { c in
        c.s("memory: ")
        c.dec(total)
        c.s(" KiB in all, ")
        c.dec(free)
        c.s(" KiB free, ")
        c.dec(given)
        c.s(" KiB in domains, hypervisor keeps ")
        c.dec(total - free - given)
        c.s(" KiB")
    }
}
