// console_io: a domain's writes to the hypervisor's console (a long one in continuations), and the
// control domain's reads of what was typed while it had the focus.
import TernArchAsm
import TernCore

func consoleIO(_ command: UInt64, _ count: UInt64, _ buffer: VirtualAddress, _ v: VCPU) -> UInt64 {
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
