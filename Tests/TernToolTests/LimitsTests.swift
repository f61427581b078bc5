import Foundation
import Testing
import TernCore
@testable import TernTool

/// Every request beyond one of Tern's limits is refused before anything is built or started, naming the
/// limit and the config at fault (issue 9: configs beyond the 16th used to be dropped without a word).
@Suite struct LimitsTests {
    private let guests = ["hello"]

    /// `count` configs named d0.cfg, d1.cfg, ..., each a "tern:hello" domain with `body` appended.
    private func configs(_ count: Int, in folder: URL, body: (Int) -> String = { _ in "" }) throws -> [URL] {
        try (0 ..< count).map { i in
            try write("name = \"d\(i)\"\nkernel = \"tern:hello\"\n" + body(i), to: folder, as: "d\(i).cfg")
        }
    }

    /// The `TernToolError.limit` message `body` throws, or nil after recording a failure.
    private func limitError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> String? {
        do {
            try body()
            Issue.record("expected a limit error", sourceLocation: sourceLocation)
        } catch TernToolError.limit(let message) {
            return message
        } catch {
            Issue.record("expected a limit error, got \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }

    @Test func theLimitsAreTheHypervisors() {
        #expect(TernLimits.maximumCPUs == 32)
        #expect(TernLimits.maximumDomains == 255)          // the Cortex-A57's 8-bit VMIDs, but VMID 0
        #expect(TernLimits.maximumVCPUsPerDomain == 8)
        #expect(DomainConfig.vcpuRange == 1 ... TernLimits.maximumVCPUsPerDomain)
    }

    // MARK: Domains

    @Test func moreConfigsThanDomainsAreRefusedNamingTheFirstBeyond() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let limit = TernLimits.maximumDomains
        let files = try configs(limit + 4, in: folder)
        let error = try #require(configError { _ = try DomainPlan.load(configs: files, guestNames: guests) })
        #expect(error.file == files[limit].path)
        #expect(error.field == nil)
        #expect(error.description == "\(files[limit].path): config \(limit + 1) of \(limit + 4): Tern runs at most \(limit) domains "
                + "(the machine's 8-bit VMIDs tell no more apart)")
    }

    /// Counted before any file is read: the first beyond is named even when it could not be read at all.
    @Test func theDomainCountIsCheckedFirst() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let limit = TernLimits.maximumDomains
        var files = try configs(limit, in: folder)
        files.append(folder.appendingPathComponent("missing.cfg"))
        let error = try #require(configError { _ = try DomainPlan.load(configs: files, guestNames: guests) })
        #expect(error.file == files[limit].path)
        #expect(error.message.contains("at most \(limit) domains"))
    }

    @Test func exactlyTheMostDomainsLoad() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let limit = TernLimits.maximumDomains
        let plan = try DomainPlan.load(configs: try configs(limit, in: folder), guestNames: guests)
        #expect(plan.domains.map(\.id) == Array(0 ..< limit))
    }

    // MARK: vCPUs

    @Test func moreThanEightVCPUsInADomainAreRefusedAtTheirLine() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let wide = try write("name = \"wide\"\nkernel = \"tern:hello\"\nvcpus = 9\n", to: folder, as: "wide.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [wide], guestNames: guests) })
        #expect(error.description == "\(wide.path):3: vcpus: 9 is out of range 1...8 (Tern runs at most 8 vCPUs per domain)")
    }

    @Test func eightVCPUsInADomainLoad() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plan = try DomainPlan.load(configs: try configs(1, in: folder) { _ in "vcpus = 8\n" }, guestNames: guests)
        #expect(plan.domains[0].config.vcpus == 8)
    }

    /// No limit on vCPUs in all but each domain's: the tables grow to what the domains ask.
    @Test func theMostDomainsOfTheMostVCPUsLoad() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let most = TernLimits.maximumDomains
        let plan = try DomainPlan.load(configs: try configs(most, in: folder) { _ in "vcpus = 8\n" }, guestNames: guests)
        #expect(plan.domains.reduce(0) { $0 + $1.config.vcpus } == 8 * most)
    }

    // MARK: CPUs

    @Test func moreMachineCPUsThanTernRunsOnAreRefused() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = try configs(1, in: folder)
        let most = TernLimits.maximumCPUs
        let error = try #require(limitError { _ = try DomainPlan.load(configs: files, guestNames: guests, machineCPUs: most + 1) })
        #expect(error == "--smp \(most + 1): Tern runs on at most \(most) CPUs (--smp 1...\(most))")
        let none = try #require(limitError { _ = try DomainPlan.load(configs: files, guestNames: guests, machineCPUs: 0) })
        #expect(none.hasPrefix("--smp 0: "))
        for cpus in [1, 2, most] {
            #expect(throws: Never.self) { try DomainPlan.load(configs: files, guestNames: guests, machineCPUs: cpus) }
        }
    }

    @Test func affinityToACPUTheMachineLacksIsRefusedAtItsLine() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let pinned = try write("name = \"p\"\nkernel = \"tern:hello\"\ncpus = \"0-3\"\n", to: folder, as: "p.cfg")
        let error = try #require(configError {
            _ = try DomainPlan.load(configs: [pinned], guestNames: guests, machineCPUs: 2)
        })
        #expect(error.description == "\(pinned.path):3: cpus: CPU 2 is not on the machine, which has 2 CPUs (0...1, --smp 2)")
        let single = try #require(configError {
            _ = try DomainPlan.load(configs: [pinned], guestNames: guests, machineCPUs: 1)
        })
        #expect(single.description == "\(pinned.path):3: cpus: CPU 1 is not on the machine, which has 1 CPU (0, --smp 1)")
        let plan = try DomainPlan.load(configs: [pinned], guestNames: guests, machineCPUs: 4)
        #expect(plan.domains[0].config.cpus == [0, 1, 2, 3])
    }

    /// Without a machine (`tern check` without --smp) no CPU beyond those Tern runs on can be named.
    @Test func affinityBeyondTernsCPUsIsRefusedWithoutAMachine() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let most = TernLimits.maximumCPUs
        let pinned = try write("name = \"p\"\nkernel = \"tern:hello\"\n\ncpus = [\"1\", \"\(most)\"]\n", to: folder, as: "p.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [pinned], guestNames: guests) })
        #expect(error.description == "\(pinned.path):4: cpus: CPU \(most) is beyond the \(most) CPUs Tern runs on (0...\(most - 1))")
        let last = try write("name = \"p\"\nkernel = \"tern:hello\"\ncpus = \"\(most - 1)\"\n", to: folder, as: "q.cfg")
        #expect(try DomainPlan.load(configs: [last], guestNames: guests).domains[0].config.cpus == [most - 1])
    }

    // MARK: Memory

    private static let mib: UInt64 = 1 << 20
    /// What the runner adds to the domains' memory: the first 256 MiB of RAM and the slack.
    private static let reserveMiB = 256 + 64

    @Test func domainsThatCannotFitInTheLargestMachineAreRefusedWhereTheyStopFitting() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let files = try configs(3, in: folder) { i in ["memory = 100000\n", "memory = 161000\n", "memory = 1\n"][i] }
        let error = try #require(configError { _ = try DomainPlan.load(configs: files, guestNames: guests) })
        #expect(error.file == files[1].path)
        #expect(error.line == 3)
        #expect(error.field == "memory")
        #expect(error.description.hasPrefix("\(files[1].path):3: memory: "))
        // 100000 + 161000 + Tern's 320.
        #expect(error.message.contains("261320 MiB"))
        #expect(error.message.contains("261120 MiB (255 GiB)"))
    }

    @Test func oneDomainLargerThanAnyMachineIsRefused() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let huge = try write("name = \"huge\"\nkernel = \"tern:hello\"\nmemory = 1048576\n", to: folder, as: "huge.cfg")
        let error = try #require(configError { _ = try DomainPlan.load(configs: [huge], guestNames: guests) })
        #expect(error.file == huge.path)
        #expect(error.field == "memory")
        #expect(error.message.contains("261120 MiB"))
    }

    /// Each domain's memory counts rounded up to 2 MiB, as the hypervisor allocates it: two domains of
    /// 130399 MiB take 130400 each, exactly filling the largest machine with Tern's reserve.
    @Test func memoryThatExactlyFillsTheLargestMachineLoads() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let half = (ModuleLayout.maximumMachineMiB - Self.reserveMiB) / 2
        #expect(half == 130_400)
        let plan = try DomainPlan.load(configs: try configs(2, in: folder) { _ in "memory = \(half - 1)\n" }, guestNames: guests)
        let machine = try plan.machine(cpus: 2, modules: [])
        #expect(machine == QEMUMachine(cpus: 2, memoryMiB: 255 * 1024))

        let over = try configs(2, in: folder) { i in "memory = \(half + i * 2)\n" }
        let error = try #require(configError { _ = try DomainPlan.load(configs: over, guestNames: guests) })
        #expect(error.file == over[1].path)
    }

    /// The boot modules are only known once the images are built; the machine for them is refused
    /// then, still before QEMU starts, when they push the domains beyond the largest machine.
    @Test func bootModulesCountTowardsTheMachine() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let half = (ModuleLayout.maximumMachineMiB - Self.reserveMiB) / 2
        let plan = try DomainPlan.load(configs: try configs(2, in: folder) { _ in "memory = \(half)\n" }, guestNames: guests)
        let modules = ModuleLayout.place([
            (domain: 0, kind: .kernel, file: URL(fileURLWithPath: "/k0"), size: 100),
            (domain: 1, kind: .kernel, file: URL(fileURLWithPath: "/k1"), size: 100),
        ])
        let error = try #require(configError { _ = try plan.machine(cpus: 2, modules: modules) })
        #expect(error.file == plan.domains[1].configFile.path)
        #expect(error.field == "memory")
        #expect(error.line == 3)
        // The modules end 2 MiB + 100 bytes past the first: 3 MiB.
        #expect(error.message.contains("\(2 * half + Self.reserveMiB + 3) MiB"))
        #expect(error.message.contains("261120 MiB (255 GiB)"))
        let small = try DomainPlan.load(configs: try configs(2, in: folder) { _ in "memory = 32\n" }, guestNames: guests)
        #expect(try small.machine(cpus: 3, modules: modules) == QEMUMachine(cpus: 3, memoryMiB: 1024))
    }

    @Test func theMachineMustHaveACPUCountTernRunsOn() throws {
        let folder = try scratchFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let plan = try DomainPlan.load(configs: try configs(1, in: folder), guestNames: guests)
        let error = try #require(limitError { _ = try plan.machine(cpus: TernLimits.maximumCPUs + 1, modules: []) })
        #expect(error.contains("at most \(TernLimits.maximumCPUs) CPUs"))
    }
}
