#if !hasFeature(Embedded)
// Reads domain configurations written in Xen's xl.cfg(5) syntax, so existing xl configs carry over.
//
//   name = "web"            # strings in double or single quotes (xl's backslash escapes apply)
//   memory = 0x200          # integers, decimal or 0x hex
//   cpus = [ "0", "2-3",    # lists, which may span lines and end with a comma
//          ]
//   vcpus = 2; cap = 150    # ';' ends a statement as a newline does
//
// Differences from xl, all deliberate: a key set twice is an error (xl silently takes the last); a key
// xl does not know is an error (xl ignores it); keys xl knows but Tern does not use are accepted with
// a warning; a decimal integer with a leading zero is refused (xl would read it as octal); "+=" is
// not supported. Only the host tool parses configs, hence the whole file is host-only.

public enum XLConfigParser {
    /// Parses `text`, the contents of the config file called `file` (used only in messages).
    /// Returns the configuration and warnings (already prefixed with file and line) for keys that are
    /// valid in xl but ignored by Tern. Throws the first problem found, in file order.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> (config: DomainConfig, warnings: [String]) {
        var parser = Parser(tokens: lex(Array(text.utf8)), file: file)
        var builder = Builder(file: file)
        while let setting = try parser.next() {
            try builder.apply(setting)
        }
        return try builder.finish()
    }
}

// MARK: - Keys

private enum Key {
    case name, memory, vcpus, kernel, ramdisk, extra, cmdline, root, cpus, weight, cap
    case onPoweroff, onReboot, onCrash, onWatchdog, ternPV, vuart, directMap, detectPanic
}

/// The keys Tern understands. "weight" is accepted as a synonym of xl's "cpu_weight".
private let knownKeys: [String: Key] = [
    "name": .name, "memory": .memory, "vcpus": .vcpus, "kernel": .kernel, "ramdisk": .ramdisk,
    "extra": .extra, "cmdline": .cmdline, "root": .root, "cpus": .cpus,
    "cpu_weight": .weight, "weight": .weight, "cap": .cap,
    "on_poweroff": .onPoweroff, "on_reboot": .onReboot, "on_crash": .onCrash, "on_watchdog": .onWatchdog, "tern_pv": .ternPV,
    "vuart": .vuart, "direct_map": .directMap, "detect_panic": .detectPanic,
]

/// Keys xl itself reads (tools/xl/xl_parse.c) that Tern accepts and ignores, with a warning.
private let ignoredXLKeys: Set<String> = [
    "acpi", "acpi_firmware", "acpi_laptop_slate", "acpi_s3", "acpi_s4", "altp2m", "altp2m_count",
    "altp2mhvm", "apic", "arm_sci", "bios", "bios_path_override", "boot", "bootloader",
    "bootloader_args", "bootloader_restrict", "bootloader_user", "builder", "channel", "cpuid",
    "cpus_soft", "device_model", "device_model_args", "device_model_override",
    "device_model_stubdomain_override", "device_model_stubdomain_seclabel", "device_model_user",
    "device_model_version", "device_tree", "disk", "display", "dm_restrict", "driver_domain", "dtdev",
    "e820_host", "extratime", "firmware", "firmware_override", "gfx_passthru", "gic_version", "hap",
    "hdtype", "hpet", "hvm_pirq", "init_seclabel", "iomem", "ioports", "irqs", "keymap", "latency",
    "llc_colors", "localtime", "max_event_channels", "max_grant_frames", "max_grant_version",
    "max_maptrack_frames", "maxmem", "maxvcpus", "mca_caps", "mmio_hole", "ms_vm_genid", "msr_relaxed",
    "nestedhvm", "nographic", "nomigrate", "nr_spis", "nx", "on_soft_reset", "oos",
    "opengl", "p9", "pae", "passthrough", "pci", "pci_msitranslate", "pci_permissive", "pci_power_mgmt",
    "pci_seize", "period", "pool", "pvcalls", "pvshim", "pvshim_cmdline", "pvshim_extra", "pvshim_path",
    "rdm", "rdm_mem_boundary", "rtc_timeoffset", "sdl", "seclabel", "serial", "shadow_memory", "slice",
    "smbios", "smbios_firmware", "soundhw", "spice", "spice_clipboard_sharing",
    "spice_image_compression", "spice_streaming_video", "spiceagent_mouse", "spicedisable_ticketing",
    "spicehost", "spicepasswd", "spiceport", "spicetls_port", "spiceusbredirection", "spicevdagent",
    "stdvga", "stubdomain_cmdline", "stubdomain_kernel", "stubdomain_memory", "stubdomain_ramdisk",
    "sve", "tee", "timer_mode", "trap_unmapped_accesses", "tsc_mode", "type", "usb", "usbctrl",
    "usbdev", "usbdevice", "usbversion", "uuid", "vdispl", "vendor_device", "vfb", "vga", "videoram",
    "vif", "vif2", "viridian", "virtio", "vkb", "vkb_device", "vmtrace_buf_kb", "vnc", "vncdisplay",
    "vnclisten", "vncpasswd", "vncunused", "vncviewer", "vnuma", "vpmu", "vpt_align", "vsnd", "vtpm",
    "xauthority", "xen_platform_pci", "xen_platform_pci_bar_uc", "xend_suspend_evtchn_compat",
    "xenstore_feature_mask", "xenstore_quota",
]

private func isIdentifier(_ s: String) -> Bool {
    var first = true
    for c in s.utf8 {
        let letter = (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        let digit = c >= 0x30 && c <= 0x39
        if !(letter || (digit && !first)) { return false }
        first = false
    }
    return !first
}

// MARK: - Lexer

private enum TokenKind: Equatable {
    /// A run of characters that is not a string or punctuation: a key, an integer, or a bare word.
    case word(String)
    case string(String)
    case equals, open, close, comma, semicolon, newline, end
    /// A lexical error (unterminated string, bad escape). Lexing stops after it.
    case bad(String)
}

private struct Token {
    var kind: TokenKind
    var line: Int
}

private enum Byte {
    static let newline: UInt8 = 0x0A, hash: UInt8 = 0x23, equals: UInt8 = 0x3D
    static let open: UInt8 = 0x5B, close: UInt8 = 0x5D, comma: UInt8 = 0x2C, semicolon: UInt8 = 0x3B
    static let doubleQuote: UInt8 = 0x22, singleQuote: UInt8 = 0x27, backslash: UInt8 = 0x5C

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C }
    static func isDelimiter(_ c: UInt8) -> Bool {
        isSpace(c) || c == newline || c == hash || c == equals || c == open || c == close || c == comma
            || c == semicolon || c == doubleQuote || c == singleQuote
    }
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}

private func lex(_ b: [UInt8]) -> [Token] {
    var tokens: [Token] = []
    var i = 0
    var line = 1
    func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    while i < b.count {
        let c = b[i]
        if Byte.isSpace(c) {
            i += 1
            continue
        }
        switch c {
        case Byte.newline:
            tokens.append(Token(kind: .newline, line: line))
            line += 1
            i += 1
        case Byte.hash:
            while i < b.count && b[i] != Byte.newline { i += 1 }
        case Byte.equals: tokens.append(Token(kind: .equals, line: line)); i += 1
        case Byte.open: tokens.append(Token(kind: .open, line: line)); i += 1
        case Byte.close: tokens.append(Token(kind: .close, line: line)); i += 1
        case Byte.comma: tokens.append(Token(kind: .comma, line: line)); i += 1
        case Byte.semicolon: tokens.append(Token(kind: .semicolon, line: line)); i += 1
        case Byte.doubleQuote, Byte.singleQuote:
            // Strings end on the line they start on. Backslash escapes as in xl (libxlu_cfg.c).
            let quote = c
            var value: [UInt8] = []
            var j = i + 1
            while true {
                guard j < b.count, b[j] != Byte.newline else {
                    tokens.append(Token(kind: .bad("unterminated string"), line: line))
                    return tokens
                }
                let d = b[j]
                if d == quote { break }
                if d != Byte.backslash {
                    value.append(d)
                    j += 1
                    continue
                }
                guard j + 1 < b.count, b[j + 1] != Byte.newline else {
                    tokens.append(Token(kind: .bad("unterminated string"), line: line))
                    return tokens
                }
                let e = b[j + 1]
                j += 2
                switch e {
                case Byte.doubleQuote, Byte.singleQuote, Byte.backslash: value.append(e)
                case UInt8(ascii: "a"): value.append(0x07)
                case UInt8(ascii: "b"): value.append(0x08)
                case UInt8(ascii: "f"): value.append(0x0C)
                case UInt8(ascii: "n"): value.append(0x0A)
                case UInt8(ascii: "r"): value.append(0x0D)
                case UInt8(ascii: "t"): value.append(0x09)
                case UInt8(ascii: "v"): value.append(0x0B)
                case UInt8(ascii: "x"):
                    guard j + 1 < b.count, let hi = Byte.hexValue(b[j]), let lo = Byte.hexValue(b[j + 1]) else {
                        tokens.append(Token(kind: .bad("\\x in a string must be followed by two hex digits"), line: line))
                        return tokens
                    }
                    value.append(hi << 4 | lo)
                    j += 2
                default:
                    tokens.append(Token(kind: .bad("unknown escape \\\(text(b[(j - 1)..<j])) in string"), line: line))
                    return tokens
                }
            }
            tokens.append(Token(kind: .string(String(decoding: value, as: UTF8.self)), line: line))
            i = j + 1
        default:
            let start = i
            while i < b.count && !Byte.isDelimiter(b[i]) { i += 1 }
            tokens.append(Token(kind: .word(text(b[start..<i])), line: line))
        }
    }
    tokens.append(Token(kind: .end, line: line))
    return tokens
}

// MARK: - Parser

private indirect enum Value {
    case string(String, line: Int)
    case word(String, line: Int)
    case list([Value], line: Int)

    var line: Int {
        switch self {
        case .string(_, let line), .word(_, let line), .list(_, let line): line
        }
    }

    /// How the value reads in a message: strings quoted, bare words as written.
    var shown: String {
        switch self {
        case .string(let s, _): "\"\(s)\""
        case .word(let w, _): w
        case .list: "a list"
        }
    }
}

private struct Setting {
    var key: String
    var value: Value
    var line: Int
}

private func shown(_ kind: TokenKind) -> String {
    switch kind {
    case .word(let w): w
    case .string(let s): "\"\(s)\""
    case .equals: "'='"
    case .open: "'['"
    case .close: "']'"
    case .comma: "','"
    case .semicolon: "';'"
    case .newline: "end of line"
    case .end: "end of file"
    case .bad(let message): message
    }
}

private struct Parser {
    let tokens: [Token]
    let file: String
    var position = 0

    init(tokens: [Token], file: String) {
        self.tokens = tokens
        self.file = file
    }

    var current: Token { tokens[position] }

    func peek(_ offset: Int) -> TokenKind {
        position + offset < tokens.count ? tokens[position + offset].kind : .end
    }

    mutating func advance() { if position < tokens.count - 1 { position += 1 } }

    func error(_ line: Int, _ field: String?, _ message: String) -> ConfigError {
        ConfigError(file: file, line: line, field: field, message: message)
    }

    /// The next `key = value` statement, or nil at the end of the file.
    mutating func next() throws(ConfigError) -> Setting? {
        while current.kind == .newline || current.kind == .semicolon { advance() }
        let keyToken = current
        let key: String
        switch keyToken.kind {
        case .end: return nil
        case .bad(let message): throw error(keyToken.line, nil, message)
        case .word(let word) where isIdentifier(word): key = word
        case .word(let word):
            throw error(keyToken.line, nil,
                        "invalid key \"\(word)\" (keys are letters, digits and '_', not starting with a digit)")
        default:
            throw error(keyToken.line, nil, "expected a key, got \(shown(keyToken.kind))")
        }
        advance()
        switch current.kind {
        case .equals: advance()
        case .word("+") where peek(1) == .equals:
            throw error(current.line, key, "'+=' is not supported; give the whole value with '='")
        case .bad(let message): throw error(current.line, key, message)
        default: throw error(current.line, key, "expected '=' after the key, got \(shown(current.kind))")
        }
        let value = try parseValue(key: key)
        switch current.kind {
        case .newline, .semicolon, .end: break
        case .bad(let message): throw error(current.line, key, message)
        default:
            throw error(current.line, key, "expected end of line or ';' after the value, got \(shown(current.kind))")
        }
        return Setting(key: key, value: value, line: keyToken.line)
    }

    mutating func parseValue(key: String) throws(ConfigError) -> Value {
        let token = current
        switch token.kind {
        case .string(let s): advance(); return .string(s, line: token.line)
        case .word(let w): advance(); return .word(w, line: token.line)
        case .open: return try parseList(key: key)
        case .bad(let message): throw error(token.line, key, message)
        default: throw error(token.line, key, "expected a value, got \(shown(token.kind))")
        }
    }

    /// `[ value, value, ... ]`, newlines allowed between elements, trailing comma allowed.
    mutating func parseList(key: String) throws(ConfigError) -> Value {
        let openLine = current.line
        advance()
        var items: [Value] = []
        func skipNewlines() { while current.kind == .newline { advance() } }
        /// True when the list was evidently never closed: the file ends, or the next statement starts.
        func unclosed() -> Bool {
            if current.kind == .end || current.kind == .semicolon { return true }
            if case .word = current.kind, peek(1) == .equals { return true }
            return false
        }
        while true {
            skipNewlines()
            if current.kind == .close { break }
            if unclosed() { throw error(openLine, key, "unterminated list (no ']' for the '[' on this line)") }
            items.append(try parseValue(key: key))
            skipNewlines()
            if current.kind == .comma {
                advance()
                continue
            }
            if current.kind == .close { break }
            if unclosed() { throw error(openLine, key, "unterminated list (no ']' for the '[' on this line)") }
            if case .bad(let message) = current.kind { throw error(current.line, key, message) }
            throw error(current.line, key, "expected ',' or ']' in list, got \(shown(current.kind))")
        }
        advance()
        return .list(items, line: openLine)
    }
}

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
        if radix == 16, let h = Byte.hexValue(c) {
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
private struct Builder {
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
    var cap: Value?
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

    mutating func apply(_ s: Setting) throws(ConfigError) {
        let known = knownKeys[s.key]
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

    func string(_ v: Value, _ key: String) throws(ConfigError) -> String {
        guard case .string(let s, _) = v else {
            throw error(v.line, key, "expected a quoted string, got \(v.shown)")
        }
        return s
    }

    func nonEmptyString(_ v: Value, _ key: String) throws(ConfigError) -> String {
        let s = try string(v, key)
        if s.isEmpty { throw error(v.line, key, "must not be empty") }
        return s
    }

    /// An integer, bare or (as xl also allows) quoted. `beyond` says why, when the range's top is one of
    /// Tern's limits, for a value above it.
    func integer(_ v: Value, _ key: String, in range: ClosedRange<Int>, beyond: String? = nil) throws(ConfigError) -> Int {
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
    func boolean(_ v: Value, _ key: String) throws(ConfigError) -> Bool {
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

    func action(_ v: Value, _ key: String) throws(ConfigError) -> ShutdownAction {
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
    mutating func cpuSet(_ v: Value, _ key: String) throws(ConfigError) -> [Int]? {
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
    func cpuRange(_ spec: String, _ v: Value, _ key: String) throws(ConfigError) -> Set<Int>? {
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
