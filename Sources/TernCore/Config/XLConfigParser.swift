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
        var builder = XLConfigBuilder(file: file)
        while let setting = try parser.next() {
            try builder.apply(setting)
        }
        return try builder.finish()
    }
}

// MARK: - Keys

enum XLKey {
    case name, memory, vcpus, kernel, ramdisk, extra, cmdline, root, cpus, weight, cap
    case onPoweroff, onReboot, onCrash, onWatchdog, ternPV, vuart, directMap, detectPanic
}

/// The keys Tern understands. "weight" is accepted as a synonym of xl's "cpu_weight".
let xlKnownKeys: [String: XLKey] = [
    "name": .name, "memory": .memory, "vcpus": .vcpus, "kernel": .kernel, "ramdisk": .ramdisk,
    "extra": .extra, "cmdline": .cmdline, "root": .root, "cpus": .cpus,
    "cpu_weight": .weight, "weight": .weight, "cap": .cap,
    "on_poweroff": .onPoweroff, "on_reboot": .onReboot, "on_crash": .onCrash, "on_watchdog": .onWatchdog, "tern_pv": .ternPV,
    "vuart": .vuart, "direct_map": .directMap, "detect_panic": .detectPanic,
]

/// Keys xl itself reads (tools/xl/xl_parse.c) that Tern accepts and ignores, with a warning.
let ignoredXLKeys: Set<String> = [
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

enum XLByte {
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
        if XLByte.isSpace(c) {
            i += 1
            continue
        }
        switch c {
        case XLByte.newline:
            tokens.append(Token(kind: .newline, line: line))
            line += 1
            i += 1
        case XLByte.hash:
            while i < b.count && b[i] != XLByte.newline { i += 1 }
        case XLByte.equals: tokens.append(Token(kind: .equals, line: line)); i += 1
        case XLByte.open: tokens.append(Token(kind: .open, line: line)); i += 1
        case XLByte.close: tokens.append(Token(kind: .close, line: line)); i += 1
        case XLByte.comma: tokens.append(Token(kind: .comma, line: line)); i += 1
        case XLByte.semicolon: tokens.append(Token(kind: .semicolon, line: line)); i += 1
        case XLByte.doubleQuote, XLByte.singleQuote:
            // Strings end on the line they start on. Backslash escapes as in xl (libxlu_cfg.c).
            let quote = c
            var value: [UInt8] = []
            var j = i + 1
            while true {
                guard j < b.count, b[j] != XLByte.newline else {
                    tokens.append(Token(kind: .bad("unterminated string"), line: line))
                    return tokens
                }
                let d = b[j]
                if d == quote { break }
                if d != XLByte.backslash {
                    value.append(d)
                    j += 1
                    continue
                }
                guard j + 1 < b.count, b[j + 1] != XLByte.newline else {
                    tokens.append(Token(kind: .bad("unterminated string"), line: line))
                    return tokens
                }
                let e = b[j + 1]
                j += 2
                switch e {
                case XLByte.doubleQuote, XLByte.singleQuote, XLByte.backslash: value.append(e)
                case UInt8(ascii: "a"): value.append(0x07)
                case UInt8(ascii: "b"): value.append(0x08)
                case UInt8(ascii: "f"): value.append(0x0C)
                case UInt8(ascii: "n"): value.append(0x0A)
                case UInt8(ascii: "r"): value.append(0x0D)
                case UInt8(ascii: "t"): value.append(0x09)
                case UInt8(ascii: "v"): value.append(0x0B)
                case UInt8(ascii: "x"):
                    guard j + 1 < b.count, let hi = XLByte.hexValue(b[j]), let lo = XLByte.hexValue(b[j + 1]) else {
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
            while i < b.count && !XLByte.isDelimiter(b[i]) { i += 1 }
            tokens.append(Token(kind: .word(text(b[start..<i])), line: line))
        }
    }
    tokens.append(Token(kind: .end, line: line))
    return tokens
}

// MARK: - Parser

indirect enum XLValue {
    case string(String, line: Int)
    case word(String, line: Int)
    case list([XLValue], line: Int)

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

struct XLSetting {
    var key: String
    var value: XLValue
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
    mutating func next() throws(ConfigError) -> XLSetting? {
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
        return XLSetting(key: key, value: value, line: keyToken.line)
    }

    mutating func parseValue(key: String) throws(ConfigError) -> XLValue {
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
    mutating func parseList(key: String) throws(ConfigError) -> XLValue {
        let openLine = current.line
        advance()
        var items: [XLValue] = []
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
#endif
