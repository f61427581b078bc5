import Foundation
import TernCore

/// Booting Xen instead of Tern on the same QEMU machine: its binary and its command line.
public struct XenBoot: Equatable, Sendable {
    public var binary: URL
    public var commandLine: String

    public init(binary: URL, commandLine: String = "console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all") {
        self.binary = binary
        self.commandLine = commandLine
    }
}

/// The boot device tree: QEMU's own description of the machine, plus one Xen dom0less-style
/// `/chosen/domU<id>` node per domain, which is what the hypervisor reads with TernCore's DomainSpec.read.
public enum BootDeviceTree {
    /// Adds (or replaces) the domain nodes under /chosen, keeping everything QEMU put there (stdout-path,
    /// the seeds).
    public static func addDomains(_ domains: [PlannedDomain], modules: [BootModule], to root: DTNode) {
        let chosen = root.child("chosen") ?? root.addChild(DTNode("chosen"))
        for domain in domains {
            let node = domainNode(domain, modules: modules.filter { $0.domain == domain.id })
            chosen.removeChild(named: node.name)
            chosen.addChild(node)
        }
    }

    public static func nodeName(domain id: Int) -> String { "domU\(id)" }

    public static func domainNode(_ domain: PlannedDomain, modules: [BootModule]) -> DTNode {
        let config = domain.config
        let node = DTNode(name: Array(nodeName(domain: domain.id).utf8))
        node.set("compatible", string: "xen,domain")
        node.set("#address-cells", u32: 2)
        node.set("#size-cells", u32: 2)
        // Xen's dom0less binding gives memory in KiB.
        node.set("memory", u64: UInt64(config.memoryMiB) * 1024)
        node.set("cpus", u32: UInt32(config.vcpus))
        node.set("tern,name", string: Array(config.name.utf8))
        node.set("tern,domid", u32: UInt32(domain.id))
        node.set("tern,weight", u32: UInt32(config.weight))
        node.set("tern,cap", u32: UInt32(config.cap))
        if let mask = affinityMask(config.cpus) { node.set("tern,affinity", u32: mask) }
        node.set("tern,on-poweroff", u32: actionCode(config.onPoweroff))
        node.set("tern,on-reboot", u32: actionCode(config.onReboot))
        node.set("tern,on-crash", u32: actionCode(config.onCrash))
        node.set("tern,on-watchdog", u32: actionCode(config.onWatchdog))
        if config.vuart ?? (domain.id != 0) { node.setEmpty("vpl011") }
        // Xen's dom0less name for "this domain gets the PV interfaces".
        if config.xenPV { node.set("xen,enhanced", string: "enabled") }
        if config.directMap ?? (domain.id == 0 && !config.kernel.hasPrefix("tern:")) { node.setEmpty("direct-map") }
        if !config.detectPanic { node.setEmpty("tern,ignore-panic") }

        for module in modules {
            let child = DTNode(name: Array("module@\(String(module.address, radix: 16))".utf8))
            switch module.kind {
            case .kernel:
                child.set("compatible", strings: [Array("multiboot,kernel".utf8), Array("multiboot,module".utf8)])
                child.setReg([(module.address, module.size)], addressCells: 2, sizeCells: 2)
                child.set("bootargs", string: Array(config.extra.utf8))
            case .ramdisk:
                child.set("compatible", strings: [Array("multiboot,ramdisk".utf8), Array("multiboot,module".utf8)])
                child.setReg([(module.address, module.size)], addressCells: 2, sizeCells: 2)
            }
            node.addChild(child)
        }
        return node
    }

    /// Bit n set: the domain may run on physical CPU n. nil (property omitted) means any CPU.
    public static func affinityMask(_ cpus: [Int]?) -> UInt32? {
        cpus.map { $0.reduce(UInt32(0)) { $0 | UInt32(1) << UInt32($1) } }
    }

    /// What the hypervisor reads from `tern,on-*` (TernCore's AfterShutdown). It has no separate
    /// rename-restart: the old domain is gone either way, so it restarts.
    public static func actionCode(_ action: ShutdownAction) -> UInt32 {
        switch action {
        case .destroy: AfterShutdown.destroy.rawValue
        case .restart, .renameRestart: AfterShutdown.restart.rawValue
        case .preserve: AfterShutdown.preserve.rawValue
        }
    }

    /// QEMU's blob in, the boot blob out. QEMU's memory reservations and boot CPU carry over.
    public static func assemble(base: [UInt8], domains: [PlannedDomain], modules: [BootModule],
                                xen: XenBoot? = nil, edit: ((DTNode) -> Void)? = nil) throws(TernToolError) -> [UInt8] {
        let root = try parse(base)
        let result: Result<[(address: UInt64, size: UInt64)], DeviceTreeError> = base.withUnsafeBytes { buffer in
            do throws(DeviceTreeError) {
                return .success(try FlattenedDeviceTree.memoryReservations(buffer))
            } catch {
                return .failure(error)
            }
        }
        guard case .success(let reservations) = result else {
            throw .deviceTree("cannot read the memory reservations of QEMU's device tree")
        }
        let bootCPU = (try? base.withUnsafeBytes { buffer throws(DeviceTreeError) in
            try FlattenedDeviceTree.header(buffer).bootCPU
        }) ?? 0
        addDomains(domains, modules: modules, to: root)
        if let xen { adapt(root, for: xen, domains: domains) }
        edit?(root)
        return FlattenedDeviceTree.serialize(root, reservations: reservations, bootCPU: bootCPU)
    }

    /// The same machine for Xen 4.17 instead of Tern, for side-by-side measurement. Xen reads its own
    /// command line from `xen,xen-bootargs` (plain `bootargs` only when it has a dom0 command line) and
    /// the dom0less binding with /chosen's cells. A Linux domain 0 becomes Xen's dom0 (its modules
    /// straight under /chosen); every other domain is a dom0less domU with a vpl011 (`xen,enhanced`
    /// would need a dom0 running xenstored).
    static func adapt(_ root: DTNode, for xen: XenBoot, domains: [PlannedDomain]) {
        guard let chosen = root.child("chosen") else { return }
        var commandLine = xen.commandLine
        chosen.set("#address-cells", u32: 2)
        chosen.set("#size-cells", u32: 2)
        for domain in domains {
            let name = Array(nodeName(domain: domain.id).utf8)
            guard let node = chosen.child(named: name) else { continue }
            if domain.id == 0 && !domain.config.kernel.hasPrefix(ImageSource.builtInPrefix) {
                _ = chosen.removeChild(named: name)
                for module in node.children { chosen.addChild(module) }
                commandLine += " dom0_mem=\(domain.config.memoryMiB)M dom0_max_vcpus=\(domain.config.vcpus)"
                continue
            }
            _ = node.remove(property: "xen,enhanced")
            _ = node.remove(property: "direct-map")
            node.setEmpty("vpl011")
        }
        chosen.set("xen,xen-bootargs", string: Array(commandLine.utf8))
    }

    public static func parse(_ blob: [UInt8]) throws(TernToolError) -> DTNode {
        let result: Result<DTNode, DeviceTreeError> = blob.withUnsafeBytes { buffer in
            do throws(DeviceTreeError) {
                return .success(try FlattenedDeviceTree.parse(buffer))
            } catch {
                return .failure(error)
            }
        }
        switch result {
        case .success(let root): return root
        case .failure(let error): throw .deviceTree("cannot parse QEMU's device tree: \(error)")
        }
    }
}
