import Foundation
import Testing
import TernCore
@testable import TernTool

@Suite struct DomainPlanTests {
    private let guests = ["hello", "spin"]

    @Test func idsFollowCommandLineOrderAndBuiltInsResolve() throws {
        let plan = try DomainPlan.load(configs: [examples.appendingPathComponent("dom0.cfg"),
                                                 examples.appendingPathComponent("spin-512.cfg")], guestNames: guests)
        #expect(plan.domains.map(\.id) == [0, 1])
        #expect(plan.domains.map(\.config.name) == ["control", "spin-512"])
        #expect(plan.domains[0].kernel == .builtIn("hello"))
        #expect(plan.domains[0].config.extra == "role=control")
        #expect(plan.domains[1].config.cpus == [0])
        #expect(plan.domains[1].config.weight == 512)
        #expect(plan.builtInGuests == ["hello", "spin"])
    }

    @Test func filesAreRelativeToTheirConfig() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        try write("kernel bytes", to: folder, as: "guests/k.img")
        try write("ramdisk bytes", to: folder, as: "rd.img")
        let config = try write("""
            name = "own"
            kernel = "../guests/k.img"
            ramdisk = "\(folder.path)/rd.img"
            """, to: folder, as: "cfg/own.cfg")
        let plan = try DomainPlan.load(configs: [config], guestNames: guests)
        #expect(plan.domains[0].kernel == .file(folder.appendingPathComponent("guests/k.img").standardizedFileURL))
        #expect(plan.domains[0].ramdisk == .file(folder.appendingPathComponent("rd.img").standardizedFileURL))
        #expect(plan.builtInGuests.isEmpty)
    }

    @Test func missingKernelFileNamesFileLineAndField() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try write("""
            # a guest whose kernel was never built
            name = "lost"

            kernel = "nowhere/Image"
            """, to: folder, as: "lost.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [config], guestNames: guests) })
        #expect(error.file == config.path)
        #expect(error.line == 4)
        #expect(error.field == "kernel")
        #expect(error.message.contains("nowhere/Image"))
        #expect(error.description.hasPrefix("\(config.path):4: kernel: "))
    }

    @Test func missingRamdiskIsReportedAgainstRamdisk() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try write("name = \"r\"; kernel = \"tern:hello\"\nramdisk = \"none.cpio\"\n", to: folder, as: "r.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [config], guestNames: guests) })
        #expect(error.field == "ramdisk")
        #expect(error.line == 2)
    }

    @Test func unknownBuiltInGuestListsTheKnownOnes() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try write("name = \"x\"\nkernel = \"tern:nosuch\"\n", to: folder, as: "x.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [config], guestNames: guests) })
        #expect(error.field == "kernel")
        #expect(error.line == 2)
        #expect(error.message.contains("tern:hello, tern:spin"))
    }

    @Test func namesMustBeUnique() throws {
        let hello = examples.appendingPathComponent("hello.cfg")
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let twin = try write("kernel = \"tern:hello\"\n  name = \"hello\"\n", to: folder, as: "twin.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [hello, twin], guestNames: guests) })
        #expect(error.file == twin.path)
        #expect(error.field == "name")
        #expect(error.line == 2)
        #expect(error.message.contains(hello.path))
    }

    @Test func cpusBeyondTheAffinityCellAreRefused() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try write("name = \"p\"\nkernel = \"tern:hello\"\ncpus = \"1,40\"\n", to: folder, as: "p.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [config], guestNames: guests) })
        #expect(error.field == "cpus")
        #expect(error.line == 3)
    }

    @Test func parserWarningsAreKept() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = try write("name = \"w\"\nkernel = \"tern:hello\"\nvif = [ 'bridge=xenbr0' ]\n", to: folder, as: "w.cfg")
        let plan = try DomainPlan.load(configs: [config], guestNames: guests)
        #expect(plan.warnings.count == 1)
        #expect(plan.warnings.first?.contains("vif") == true)
    }

    @Test func unreadableConfigIsAConfigError() {
        let missing = URL(fileURLWithPath: "/nonexistent/tern.cfg")
        let error = configError { _ = try DomainPlan.load(configs: [missing], guestNames: guests) }
        #expect(error?.file == "/nonexistent/tern.cfg")
    }

    @Test func keyLineFindsAssignmentsOnly() {
        let text = "# kernel = \"no\"\nkernelish = 1\n\tkernel\t= \"yes\"\n"
        #expect(DomainPlan.keyLine("kernel", in: text) == 3)
        #expect(DomainPlan.keyLine("ramdisk", in: text) == 0)
    }

    @Test func everyExampleButTheBrokenOneLoads() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: examples.path)
            .filter { $0.hasSuffix(".cfg") && $0 != "broken.cfg" }.sorted()
        #expect(files.count >= 8)
        // In runs of at most TernLimits.maximumDomains, the most one plan may hold.
        let domains = try stride(from: 0, to: files.count, by: TernLimits.maximumDomains).flatMap { start in
            try DomainPlan.load(configs: files[start ..< min(start + TernLimits.maximumDomains, files.count)]
                                    .map { examples.appendingPathComponent($0) },
                                guestNames: layout.guestNames()).domains
        }
        #expect(domains.count == files.count)
        // Tern's own guests fit in 32 MiB (big-hello is large on purpose); Linux gets 64 MiB to 1 GiB.
        #expect(domains.filter { $0.config.kernel.hasPrefix("tern:") && $0.config.name != "big-hello" }
            .allSatisfy { $0.config.memoryMiB == 32 })
        #expect(domains.first { $0.config.name == "big-hello" }?.config.memoryMiB == 1024)
        #expect(domains.filter { !$0.config.kernel.hasPrefix("tern:") }.allSatisfy { (64 ... 1024).contains($0.config.memoryMiB) })
        #expect(domains.first { $0.config.name == "smp" }?.config.vcpus == 2)
    }
}
