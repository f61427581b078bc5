// The PV console's backend, inside the hypervisor: the domain writes to the ring page Tern mapped at
// MagicPages.console and kicks its console port; Tern prints what it wrote with the domain's prefix and
// kicks back. Typed input goes the other way. The ring indexes are the guest's to write, so every one
// is checked before use: a bad index resynchronises the ring, it never reaches outside the page.
import TernArchAsm
import TernCore

/// At build time: the ring page and the port whose other end is the hypervisor.
func preparePVConsole(_ d: Domain) -> Bool {
    d.events.withLock { e in
        guard let frame = mapHypervisorFrame(d, at: MagicPages.console),
              let port = e.ports.allocate(.console) else { return false }
        d.consoleRing = frame
        d.consolePort = port
        return true
    }
}

/// The guest kicked its console port: print what it wrote, tell it there is room again.
func consoleRingKick(_ d: Domain) {
    guard let ring = d.consoleRing?.raw else { return }
    d.consoleConnected = true
    let size = UInt32(ConsoleRingLayout.outputSize)
    var consumer = tern_load32(ring + UInt64(ConsoleRingLayout.outputConsumer))
    let producer = tern_load32(ring + UInt64(ConsoleRingLayout.outputProducer))
    tern_memory_barrier()                          // read the indexes before the bytes they cover
    if producer &- consumer > size { consumer = producer }
    var chunk: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &chunk) { b in
        let bytes = b.bindMemory(to: UInt8.self)
        while consumer != producer {
            var n = 0
            while consumer != producer && n < bytes.count {
                bytes[n] = tern_load8(ring + UInt64(ConsoleRingLayout.output) + UInt64(consumer % size))
                consumer &+= 1
                n += 1
            }
            d.consoleWrite(UnsafeBufferPointer(rebasing: bytes[..<n]))
        }
    }
    tern_memory_barrier()                          // the bytes are read before the guest may reuse them
    tern_store32(ring + UInt64(ConsoleRingLayout.outputConsumer), consumer)
    notifyPort(d, d.consolePort)
}

/// A typed byte for a domain whose PV console is connected. False when its input ring is full.
func consoleRingReceive(_ d: Domain, _ byte: UInt8) -> Bool {
    guard let ring = d.consoleRing?.raw else { return false }
    let size = UInt32(ConsoleRingLayout.inputSize)
    let consumer = tern_load32(ring + UInt64(ConsoleRingLayout.inputConsumer))
    let producer = tern_load32(ring + UInt64(ConsoleRingLayout.inputProducer))
    tern_memory_barrier()
    guard producer &- consumer < size else { return false }
    tern_store8(ring + UInt64(ConsoleRingLayout.input) + UInt64(producer % size), byte)
    tern_memory_barrier()                          // the byte is there before the index says so
    tern_store32(ring + UInt64(ConsoleRingLayout.inputProducer), producer &+ 1)
    notifyPort(d, d.consolePort)
    return true
}
