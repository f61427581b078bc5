// xl.cfg values turned into a DomainConfig: the typed readings of each key (strings, integers as xl
// reads them, booleans, shutdown actions, CPU sets) with Xen's rules and Tern's limits, and the
// file:line: field: message errors a bad value gets. The lexer and parser are XLConfigParser.swift.
// Host-only, as the parser is.
#if !hasFeature(Embedded)
// MARK: - Values to configuration

private enum ParsedInteger {
    case value(Int)
    case overflow
    case invalid
    case leadingZero
}

/// Decimal or 0x hex, optionally negative.
private func parseInteger(_ text: String) -> ParsedInteger {
    var bytes = Array(text.utf8)[...]
    var negative = false
    if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") {
        negative = bytes.first == UInt8(ascii: "-")
        bytes = bytes.dropFirst()
    }
    var radix = 10
    if bytes.count > 2, bytes.first == UInt8(ascii: "0"),
       bytes[bytes.startIndex + 1] == UInt8(ascii: "x") || bytes[bytes.startIndex + 1] == UInt8(ascii: "X") {
        radix = 16
        bytes = bytes.dropFirst(2)
    }
    if bytes.isEmpty { return .invalid }
    var result = 0
    for c in bytes {
        let digit: Int
        if radix == 16, let h = XLByte.hexValue(c) {
            digit = Int(h)
        } else if c >= 0x30 && c <= 0x39 {
            digit = Int(c - 0x30)
        } else {
            return .invalid
        }
        let (shifted, o1) = result.multipliedReportingOverflow(by: radix)
        let (sum, o2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
        if o1 || o2 { return .overflow }
        result = sum
    }
    if radix == 10 && bytes.count > 1 && bytes.first == UInt8(ascii: "0") { return .leadingZero }
    return .value(result)
}

private func parseShutdownAction(_ name: String) -> ShutdownAction? {
    switch name {
    case "destroy": .destroy
    case "restart": .restart
    case "preserve": .preserve
    case "rename-restart": .renameRestart
    default: nil
    }
}

/// Accumulates settings, one statement at a time, into a DomainConfig.
struct XLConfigBuilder {
    let file: String
    var warnings: [String] = []
    /// Where each key was first set, by canonical key (so "weight" and "cpu_weight" collide).
    var seen: [String: (key: String, line: Int)] = [:]

    var name: String?
    var kernel: String?
    var memoryMiB = DomainConfig.defaultMemoryMiB
    var vcpus = 1
    var ramdisk: String?
    var extra: (value: String, line: Int)?
    var cmdline: String?
    var root: (value: String, line: Int)?
    var cpus: [Int]?
    var weight = DomainConfig.defaultWeight
    /// Checked in finish(), since its range depends on "vcpus", which may come later.
    var cap: XLValue?
    var onPoweroff = ShutdownAction.destroy
    var onReboot = ShutdownAction.restart
    var onCrash = ShutdownAction.destroy
    var onWatchdog = ShutdownAction.destroy
    var xenPV = true
    var vuart: Bool?
    var directMap: Bool?
    var detectPanic = true

    init(file: String) { self.file = file }

    func error(_ line: Int, _ field: String?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, field: field, message: message)
    }

    mutating func apply(_ s: XLSetting) throws(ConfigError) {
        let known = xlKnownKeys[s.key]
        guard known != nil || ignoredXLKeys.contains(s.key) else {
            throw error(s.line, s.key, "unknown key")
        }
        let canonical = known == .weight ? "cpu_weight" : s.key
        if let first = seen[canonical] {
            let alias = first.key == s.key ? "" : " as \(first.key)"
            throw error(s.line, s.key, "duplicate key (already set\(alias) on line \(first.line))")
        }
        seen[canonical] = (s.key, s.line)

        guard let key = known else {
            warnings.append("\(file):\(s.line): \(s.key): ignored (xl setting that Tern does not use)")
            return
        }
        let v = s.value
        switch key {
        case .name: name = try nonEmptyString(v, s.key)
        case .kernel: kernel = try nonEmptyString(v, s.key)
        case .ramdisk: ramdisk = try nonEmptyString(v, s.key)
        case .extra: extra = (try string(v, s.key), s.line)
        case .cmdline: cmdline = try string(v, s.key)
        case .root: root = (try nonEmptyString(v, s.key), s.line)
        case .memory: memoryMiB = try integer(v, s.key, in: DomainConfig.memoryMiBRange)
        case .vcpus:
            vcpus = try integer(v, s.key, in: DomainConfig.vcpuRange,
                                beyond: "Tern runs at most \(TernLimits.maximumVCPUsPerDomain) vCPUs per domain")
        case .weight: weight = try integer(v, s.key, in: DomainConfig.weightRange)
        case .cap: cap = v
        case .cpus: cpus = try cpuSet(v, s.key)
        case .onPoweroff: onPoweroff = try action(v, s.key)
        case .onReboot: onReboot = try action(v, s.key)
        case .onCrash: onCrash = try action(v, s.key)
        case .onWatchdog: onWatchdog = try action(v, s.key)
        case .ternPV: xenPV = try boolean(v, s.key)
        case .directMap: directMap = try boolean(v, s.key)
        case .detectPanic: detectPanic = try boolean(v, s.key)
        case .vuart:
            // xl's only Arm value is "sbsa_uart"; Tern also takes "none" to leave it out of a domU.
            switch try string(v, s.key) {
            case "sbsa_uart": vuart = true
            case "none": vuart = false
            case let other: throw error(v.line, s.key, "expected \"sbsa_uart\" or \"none\", got \"\(other)\"")
            }
        }
    }

    mutating func finish() throws(ConfigError) -> (config: DomainConfig, warnings: [String]) {
        guard let name else { throw error(0, "name", "missing required key") }
        guard let kernel else { throw error(0, "kernel", "missing required key") }
        let capPercent = try cap.map { v throws(ConfigError) in
            try integer(v, "cap", in: DomainConfig.capRange(vcpus: vcpus))
        } ?? 0
        // As xl's parse_cmdline: "cmdline" wins over "root" and "extra"; otherwise "root=R extra".
        var commandLine = ""
        if let cmdline {
            commandLine = cmdline
            for (ignored, setting) in [("root", root), ("extra", extra)] {
                if let setting {
                    warnings.append("\(file):\(setting.line): \(ignored): ignored in favour of cmdline (as xl does)")
                }
            }
        } else {
            let parts = [root.map { "root=\($0.value)" }, extra.map { $0.value }].compactMap { $0 }
            commandLine = parts.joined(separator: " ")
        }
        let config = DomainConfig(
            name: name, kernel: kernel, memoryMiB: memoryMiB, vcpus: vcpus, ramdisk: ramdisk,
            extra: commandLine, cpus: cpus, weight: weight, cap: capPercent,
            onPoweroff: onPoweroff, onReboot: onReboot, onCrash: onCrash, onWatchdog: onWatchdog, xenPV: xenPV, vuart: vuart, directMap: directMap,
            detectPanic: detectPanic)
        return (config, warnings)
    }

    // MARK: Typed values

    func string(_ v: XLValue, _ key: String) throws(ConfigError) -> String {
        guard case .string(let s, _) = v else {
            throw error(v.line, key, "expected a quoted string, got \(v.shown)")
        }
        return s
    }

    func nonEmptyString(_ v: XLValue, _ key: String) throws(ConfigError) -> String {
        let s = try string(v, key)
        if s.isEmpty { throw error(v.line, key, "must not be empty") }
        return s
    }

    /// An integer, bare or (as xl also allows) quoted. `beyond` says why, when the range's top is one of
    /// Tern's limits, for a value above it.
    func integer(_ v: XLValue, _ key: String, in range: ClosedRange<Int>, beyond: String? = nil) throws(ConfigError) -> Int {
        let text: String
        switch v {
        case .word(let w, _), .string(let w, _): text = w
        case .list: throw error(v.line, key, "expected an integer, got a list")
        }
        let parsed = parseInteger(text)
        switch parsed {
        case .value(let n) where range.contains(n): return n
        case .value, .overflow:
            var above = !text.hasPrefix("-")
            if case .value(let n) = parsed { above = n > range.upperBound }
            let reason = above ? beyond.map { " (\($0))" } ?? "" : ""
            throw error(v.line, key, "\(text) is out of range \(range.lowerBound)...\(range.upperBound)\(reason)")
        case .leadingZero:
            throw error(v.line, key, "\(v.shown) has a leading zero, which xl would read as octal; write it without")
        case .invalid:
            throw error(v.line, key, "expected an integer, got \(v.shown)")
        }
    }

    /// 0/1, yes/no or true/false, bare or quoted.
    func boolean(_ v: XLValue, _ key: String) throws(ConfigError) -> Bool {
        switch v {
        case .word(let w, _), .string(let w, _):
            switch w.lowercased() {
            case "1", "yes", "true": return true
            case "0", "no", "false": return false
            default: break
            }
        case .list: break
        }
        throw error(v.line, key, "expected a boolean (0/1, yes/no or true/false), got \(v.shown)")
    }

    func action(_ v: XLValue, _ key: String) throws(ConfigError) -> ShutdownAction {
        let name = try string(v, key)
        if let action = parseShutdownAction(name) { return action }
        let supported = "destroy, restart, preserve or rename-restart"
        if ["coredump-destroy", "coredump-restart", "soft-reset"].contains(name) {
            throw error(v.line, key, "\(v.shown) is not supported by Tern (use \(supported))")
        }
        throw error(v.line, key, "unknown action \(v.shown) (expected \(supported))")
    }

    /// xl's CPU-LIST: "all", "3", "0-3", "0,2-3", "0-7,^5"; or a list of those. xl pins vCPU i to the
    /// i-th list entry; Tern has one affinity set per domain, so list entries are merged (with a warning).
    mutating func cpuSet(_ v: XLValue, _ key: String) throws(ConfigError) -> [Int]? {
        switch v {
        case .string(let s, _), .word(let s, _):
            return try cpuRange(s, v, key).map { $0.sorted() }
        case .list(let items, _):
            if items.isEmpty { throw error(v.line, key, "the list selects no CPUs") }
            var union: Set<Int> = []
            var all = false
            for item in items {
                switch item {
                case .string(let s, _), .word(let s, _):
                    if let set = try cpuRange(s, item, key) { union.formUnion(set) } else { all = true }
                case .list: throw error(item.line, key, "expected a CPU list string, got a nested list")
                }
            }
            if items.count > 1 {
                warnings.append("\(file):\(v.line): \(key): xl pins each vCPU to its own list entry; Tern merges them into one affinity set for every vCPU")
            }
            return all ? nil : union.sorted()
        }
    }

    /// One CPU-LIST string; nil means all CPUs.
    func cpuRange(_ spec: String, _ v: XLValue, _ key: String) throws(ConfigError) -> Set<Int>? {
        var set: Set<Int> = []
        var all = false
        var excluded = false
        for rawPart in spec.split(separator: ",", omittingEmptySubsequences: false) {
            var part = rawPart.drop { $0 == " " }
            while part.last == " " { part = part.dropLast() }
            if part.isEmpty { throw error(v.line, key, "empty entry in CPU list \"\(spec)\"") }
            let exclude = part.hasPrefix("^")
            if exclude {
                part = part.dropFirst()
                excluded = true
            }
            if part.hasPrefix("node:") || part.hasPrefix("nodes:") {
                throw error(v.line, key, "NUMA node selections (\"\(part)\") are not supported by Tern")
            }
            if part == "all" {
                if exclude { throw error(v.line, key, "\"^all\" is not allowed") }
                all = true
                continue
            }
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            var numbers: [Int] = []
            for bound in bounds {
                guard !bound.isEmpty, bound.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    throw error(v.line, key, "invalid CPU range \"\(part)\" in \"\(spec)\"")
                }
                guard let n = Int(bound), n <= DomainConfig.maxCPUID else {
                    throw error(v.line, key, "CPU \(bound) is out of range 0...\(DomainConfig.maxCPUID)")
                }
                numbers.append(n)
            }
            let low = numbers[0], high = numbers.last!
            if high < low { throw error(v.line, key, "invalid CPU range \"\(part)\" (end before start)") }
            for cpu in low...high {
                if exclude { set.remove(cpu) } else { set.insert(cpu) }
            }
        }
        if all {
            if excluded {
                throw error(v.line, key, "\"all\" with exclusions is not supported by Tern; list the CPUs instead")
            }
            return nil
        }
        if set.isEmpty { throw error(v.line, key, "\"\(spec)\" selects no CPUs") }
        return set
    }
}
#endif
