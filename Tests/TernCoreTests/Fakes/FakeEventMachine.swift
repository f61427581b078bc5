@testable import TernCore

/// A machine's event-channel tables for host tests: each domain's table in a box of its own, so a test
/// can hold two at once as the hypervisor does under two locks; what the operations caused is recorded.
final class FakeEventMachine {
    final class Box { var ports = EventChannelTable() }
    var domains: [DomainID: Box] = [:]
    var vcpus: [DomainID: Int] = [:]
    private(set) var raised: [(DomainID, EventPort)] = []
    private(set) var consoleKicks = 0
    private(set) var unmasked: [(EventPort, Int)] = []
    private(set) var closing: [EventPort] = []
    /// FIFO: each domain's registered control blocks (by vCPU), array pages and priorities.
    var controlBlocks: [DomainID: [Int: HostPhysicalAddress]] = [:]
    var arrayPages: [DomainID: [HostPhysicalAddress]] = [:]
    var priorities: [EventPort: Int] = [:]
    /// Every domain's RAM: 16 MiB at 0x40000000, host memory 4 GiB higher.
    static let ram = 0x4000_0000 as UInt64 ..< 0x4100_0000

    func add(_ id: UInt16, vcpus: Int = 2) {
        domains[DomainID(id)] = Box()
        self.vcpus[DomainID(id)] = vcpus
    }

    func ports(_ id: UInt16) -> EventChannelTable { domains[DomainID(id)]!.ports }

    func raised(_ id: UInt16) -> [EventPort] { raised.filter { $0.0 == DomainID(id) }.map(\.1) }

    struct Host: EventChannelHost {
        let machine: FakeEventMachine
        let caller: DomainID
        var vcpuCount: Int { machine.vcpus[caller]! }
        var privileged: Bool { caller.raw == 0 }

        func withPorts<R>(of other: DomainID, _ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R? {
            guard let box = machine.domains[other] else { return nil }
            return withUnsafeMutablePointer(to: &box.ports, body)
        }

        func withPorts<R>(_ body: (UnsafeMutablePointer<EventChannelTable>) -> R) -> R {
            withUnsafeMutablePointer(to: &machine.domains[caller]!.ports, body)
        }

        func withPorts<R>(pairedWith peer: DomainID,
                          _ body: (UnsafeMutablePointer<EventChannelTable>, UnsafeMutablePointer<EventChannelTable>) -> R) -> R? {
            if peer == caller { return withPorts { body($0, $0) } }
            guard let own = machine.domains[caller], let other = machine.domains[peer] else { return nil }
            return withUnsafeMutablePointer(to: &own.ports) { a in withUnsafeMutablePointer(to: &other.ports) { b in body(a, b) } }
        }

        func raise(_ port: EventPort) { machine.raised.append((caller, port)) }

        func raise(_ port: EventPort, of peer: DomainID, if stillOurs: (EventChannelTable) -> Bool) {
            guard let other = machine.domains[peer], stillOurs(other.ports) else { return }
            machine.raised.append((peer, port))
        }

        func kickConsole() { machine.consoleKicks += 1 }
        func unmasked(_ port: EventPort, vcpu: Int) { machine.unmasked.append((port, vcpu)) }
        func closing(_ port: EventPort) { machine.closing.append(port) }

        func ram(_ address: GuestPhysicalAddress, length: UInt64) -> HostPhysicalAddress? {
            guard FakeEventMachine.ram.contains(address.raw), address.raw + length <= FakeEventMachine.ram.upperBound else { return nil }
            return HostPhysicalAddress(address.raw + 0x1_0000_0000)
        }
        func fifoRegisterControlBlock(vcpu: Int, at block: HostPhysicalAddress) -> Bool {
            if machine.controlBlocks[caller]?[vcpu] != nil { return false }
            machine.controlBlocks[caller, default: [:]][vcpu] = block
            return true
        }
        func fifoAddArrayPage(_ page: HostPhysicalAddress) -> Bool? {
            guard machine.controlBlocks[caller] != nil else { return nil }
            if machine.arrayPages[caller, default: []].count == 2 { return false }
            machine.arrayPages[caller, default: []].append(page)
            return true
        }
        func fifoSetPriority(_ port: EventPort, _ priority: Int) -> Bool? {
            guard machine.controlBlocks[caller] != nil else { return nil }
            guard priority < 16 else { return false }
            machine.priorities[port] = priority
            return true
        }
    }
}
