import Testing
@testable import TernCore

/// Parses `text` as a file called "test.cfg", expecting success.
private func parse(_ text: String) throws -> (config: DomainConfig, warnings: [String]) {
    try XLConfigParser.parse(text, file: "test.cfg")
}

/// Parses `text`, expecting a ConfigError; returns it (or nil, after recording a failure).
private func parseError(_ text: String, file: String = "test.cfg",
                        sourceLocation: SourceLocation = #_sourceLocation) -> ConfigError? {
    do {
        let result = try XLConfigParser.parse(text, file: file)
        Issue.record("expected an error, got \(result.config)", sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The two keys every config needs, to put around whatever a test is about.
private let minimal = """
    name = "t"
    kernel = "k"

    """

@Suite struct XLConfigParserTests {
    // MARK: Whole configs

    @Test func fullRealisticConfig() throws {
        let text = """
            # /etc/tern/web.cfg -- front-end web server
            name    = "web"
            type    = "pvh"            # xl key Tern ignores
            kernel  = "/var/lib/tern/vmlinuz-6.6"
            ramdisk = '/var/lib/tern/initrd-6.6.img'
            extra   = "console=hvc0 quiet # not a comment"
            memory  = 512
            maxmem  = 1024
            vcpus   = 2
            cpus    = "2-3"
            cpu_weight = 512
            cap     = 150
            on_poweroff = "destroy"
            on_reboot   = "restart"
            on_crash    = "preserve"
            tern_pv = 1
            vif  = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
            disk = [ 'phy:/dev/vg0/web,xvda,w',
                     'file:/srv/web-data.img,xvdb,w', ]
            uuid = "6f1e2c34-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
            """
        let (config, warnings) = try XLConfigParser.parse(text, file: "web.cfg")
        #expect(config == DomainConfig(
            name: "web", kernel: "/var/lib/tern/vmlinuz-6.6", memoryMiB: 512, vcpus: 2,
            ramdisk: "/var/lib/tern/initrd-6.6.img", extra: "console=hvc0 quiet # not a comment",
            cpus: [2, 3], weight: 512, cap: 150, onPoweroff: .destroy, onReboot: .restart,
            onCrash: .preserve, xenPV: true))
        #expect(warnings == [
            "web.cfg:3: type: ignored (xl setting that Tern does not use)",
            "web.cfg:8: maxmem: ignored (xl setting that Tern does not use)",
            "web.cfg:17: vif: ignored (xl setting that Tern does not use)",
            "web.cfg:18: disk: ignored (xl setting that Tern does not use)",
            "web.cfg:20: uuid: ignored (xl setting that Tern does not use)",
        ])
    }

    @Test func defaults() throws {
        let (config, warnings) = try parse(minimal)
        #expect(warnings.isEmpty)
        #expect(config.name == "t")
        #expect(config.kernel == "k")
        #expect(config.memoryMiB == 128)
        #expect(config.vcpus == 1)
        #expect(config.ramdisk == nil)
        #expect(config.extra == "")
        #expect(config.cpus == nil)
        #expect(config.weight == 256)
        #expect(config.cap == 0)
        #expect(config.onPoweroff == .destroy)
        #expect(config.onReboot == .restart)
        #expect(config.onCrash == .destroy)
        #expect(config.onWatchdog == .destroy)
        #expect(config.xenPV == true)
        #expect(config.vuart == nil && config.directMap == nil)
        #expect(config.detectPanic)
        #expect(config == DomainConfig(name: "t", kernel: "k"))
    }

    @Test func emptyLinesCommentsSemicolonsAndNoFinalNewline() throws {
        let text = "\n# header\n\n  name = \"a\" ;\n;\nkernel='k'; memory=64;vcpus=2   # trailing\r\n\t\ncap = 10"
        let (config, _) = try parse(text)
        #expect(config == DomainConfig(name: "a", kernel: "k", memoryMiB: 64, vcpus: 2, cap: 10))
    }

    // MARK: Strings and comments

    @Test func commentsInsideAndOutsideQuotes() throws {
        let text = """
            # a comment with "quotes" and 'apostrophes' and [brackets
            name = "hash#tag"   # comment after a value
            kernel = 'k#1'#comment right after
            extra = "a 'b' c"   # 'unbalanced
            """
        let (config, _) = try parse(text)
        #expect(config.name == "hash#tag")
        #expect(config.kernel == "k#1")
        #expect(config.extra == "a 'b' c")
    }

    @Test func escapesInStrings() throws {
        let (config, _) = try parse(minimal + #"extra = "say \"hi\" \\ it\'s\tok\x41""#)
        #expect(config.extra == "say \"hi\" \\ it's\tokA")
    }

    @Test func cmdlineRootAndExtraCombineAsInXL() throws {
        #expect(try parse(minimal + "cmdline = \"console=hvc0\"").config.extra == "console=hvc0")
        #expect(try parse(minimal + "root = \"/dev/xvda1\"\nextra = \"ro\"").config.extra == "root=/dev/xvda1 ro")
        #expect(try parse(minimal + "root = \"/dev/xvda1\"").config.extra == "root=/dev/xvda1")
        let (config, warnings) = try parse(minimal + "extra = \"x\"\ncmdline = \"y\"")
        #expect(config.extra == "y")
        #expect(warnings == ["test.cfg:3: extra: ignored in favour of cmdline (as xl does)"])
    }

    // MARK: Numbers

    @Test func hexNumbers() throws {
        let (config, _) = try parse(minimal + "memory = 0x200\nvcpus = 0X4\ncpu_weight = 0xFfFf")
        #expect(config.memoryMiB == 512)
        #expect(config.vcpus == 4)
        #expect(config.weight == 65535)
    }

    @Test func quotedIntegersAsXLAllows() throws {
        #expect(try parse(minimal + "memory = \"256\"").config.memoryMiB == 256)
    }

    @Test func weightSynonym() throws {
        #expect(try parse(minimal + "weight = 100").config.weight == 100)
    }

    @Test func capRangeFollowsVcpus() throws {
        #expect(try parse(minimal + "cap = 400\nvcpus = 4").config.cap == 400)
        let error = try #require(parseError(minimal + "cap = 250\nvcpus = 2"))
        #expect(error.line == 3)
        #expect(error.field == "cap")
        #expect(error.description == "test.cfg:3: cap: 250 is out of range 0...200")
    }

    @Test func booleans() throws {
        for (text, expected) in [("1", true), ("0", false), ("\"yes\"", true), ("'no'", false),
                                 ("true", true), ("false", false), ("\"True\"", true), ("yes", true)] {
            #expect(try parse(minimal + "tern_pv = \(text)").config.xenPV == expected, "\(text)")
        }
        let error = try #require(parseError(minimal + "tern_pv = 2"))
        #expect(error.description == "test.cfg:3: tern_pv: expected a boolean (0/1, yes/no or true/false), got 2")
    }

    // MARK: Lists and cpus

    @Test func listsAcrossLines() throws {
        let text = minimal + """
            disk = [
                'phy:/dev/vg0/a,xvda,w',   # first

                "file:/b.img,xvdb,r"       # no comma before the close: fine
            ]
            vif = [ ]
            cpus = [ "0",
                     "1",
                   ]
            pci = [ [ "nested", 1 ], ]
            memory = 64
            """
        let (config, warnings) = try parse(text)
        #expect(config.cpus == [0, 1])
        #expect(config.memoryMiB == 64)
        #expect(warnings.count == 4)
        #expect(warnings[0] == "test.cfg:3: disk: ignored (xl setting that Tern does not use)")
        #expect(warnings[2].hasPrefix("test.cfg:9: cpus: "))
        #expect(warnings[3] == "test.cfg:12: pci: ignored (xl setting that Tern does not use)")
    }

    @Test(arguments: [
        ("\"0-1\"", [0, 1] as [Int]?),
        ("\"0,2\"", [0, 2]),
        ("\"0,2-3\"", [0, 2, 3]),
        ("\"3\"", [3]),
        ("3", [3]),
        ("\"0-7,^5\"", [0, 1, 2, 3, 4, 6, 7]),
        ("\" 1 , 0 \"", [0, 1]),
        ("\"all\"", nil),
        ("[\"0\", \"1\"]", [0, 1]),
        ("[\"2-3\", \"0\", \"3\"]", [0, 2, 3]),
        ("[\"all\", \"1\"]", nil),
        ("[\"5\"]", [5]),
    ])
    func cpusForms(value: String, expected: [Int]?) throws {
        #expect(try parse(minimal + "cpus = \(value)").config.cpus == expected)
    }

    @Test func cpusListOfSeveralEntriesWarnsAboutMerging() throws {
        #expect(try parse(minimal + "cpus = [\"1\"]").warnings.isEmpty)
        let warnings = try parse(minimal + "cpus = [\"1\", \"2\"]").warnings
        #expect(warnings == ["test.cfg:3: cpus: xl pins each vCPU to its own list entry; Tern merges them into one affinity set for every vCPU"])
    }

    @Test(arguments: [
        ("\"\"", "empty entry in CPU list \"\""),
        ("\"0,,1\"", "empty entry in CPU list \"0,,1\""),
        ("\"3-1\"", "invalid CPU range \"3-1\" (end before start)"),
        ("\"x\"", "invalid CPU range \"x\" in \"x\""),
        ("\"1-\"", "invalid CPU range \"1-\" in \"1-\""),
        ("\"256\"", "CPU 256 is out of range 0...255"),
        ("\"^all\"", "\"^all\" is not allowed"),
        ("\"all,^1\"", "\"all\" with exclusions is not supported by Tern; list the CPUs instead"),
        ("\"1,^1\"", "\"1,^1\" selects no CPUs"),
        ("\"nodes:0\"", "NUMA node selections (\"nodes:0\") are not supported by Tern"),
        ("[]", "the list selects no CPUs"),
        ("[[\"0\"]]", "expected a CPU list string, got a nested list"),
    ])
    func cpusErrors(value: String, message: String) throws {
        let error = try #require(parseError(minimal + "cpus = \(value)"))
        #expect(error == ConfigError(file: "test.cfg", line: 3, field: "cpus", message: message))
    }

    // MARK: Shutdown actions

    @Test func shutdownActions() throws {
        let text = minimal + """
            on_poweroff = "preserve"
            on_reboot = 'rename-restart'
            on_crash = "restart"
            on_watchdog = "preserve"
            """
        let (config, warnings) = try parse(text)
        #expect(config.onPoweroff == .preserve)
        #expect(config.onReboot == .renameRestart)
        #expect(config.onCrash == .restart)
        #expect(config.onWatchdog == .preserve)
        #expect(warnings.isEmpty)
        for action in [ShutdownAction.destroy, .restart, .preserve, .renameRestart] {
            #expect(try parse(minimal + "on_crash = \"\(action.xlName)\"").config.onCrash == action)
        }
    }

    @Test func shutdownActionErrors() throws {
        var error = try #require(parseError(minimal + "on_crash = \"explode\""))
        #expect(error.description == #"test.cfg:3: on_crash: unknown action "explode" (expected destroy, restart, preserve or rename-restart)"#)
        error = try #require(parseError(minimal + "on_reboot = \"coredump-restart\""))
        #expect(error.field == "on_reboot")
        #expect(error.message.contains("not supported by Tern"))
        error = try #require(parseError(minimal + "on_poweroff = destroy"))
        #expect(error.description == "test.cfg:3: on_poweroff: expected a quoted string, got destroy")
    }

    // MARK: Errors: each names file, line and field

    @Test func descriptionFormat() {
        #expect(ConfigError(file: "web.cfg", line: 3, field: "memory", message: #"expected an integer, got "lots""#)
            .description == #"web.cfg:3: memory: expected an integer, got "lots""#)
        #expect(ConfigError(file: "a.cfg", line: 2, field: nil, message: "m").description == "a.cfg:2: m")
        #expect(ConfigError(file: "a.cfg", line: 0, field: "name", message: "missing required key").description
            == "a.cfg: name: missing required key")
    }

    @Test func wrongType() throws {
        var error = try #require(parseError("name = \"w\"\nkernel = \"k\"\nmemory = \"lots\"", file: "web.cfg"))
        #expect(error == ConfigError(file: "web.cfg", line: 3, field: "memory", message: #"expected an integer, got "lots""#))
        #expect(error.description == #"web.cfg:3: memory: expected an integer, got "lots""#)

        error = try #require(parseError(minimal + "memory = 64M"))
        #expect(error.description == "test.cfg:3: memory: expected an integer, got 64M")
        error = try #require(parseError(minimal + "vcpus = [1]"))
        #expect(error.description == "test.cfg:3: vcpus: expected an integer, got a list")
        error = try #require(parseError("name = [\"a\"]\nkernel = \"k\""))
        #expect(error.description == "test.cfg:1: name: expected a quoted string, got a list")
        error = try #require(parseError("name = \"a\"\nkernel = /boot/vmlinuz"))
        #expect(error.description == "test.cfg:2: kernel: expected a quoted string, got /boot/vmlinuz")
        error = try #require(parseError(minimal + "memory = 010"))
        #expect(error.field == "memory")
        #expect(error.message.contains("leading zero"))
    }

    @Test func outOfRange() throws {
        for (line, expected) in [
            ("vcpus = 9", "test.cfg:3: vcpus: 9 is out of range 1...8 (Tern runs at most 8 vCPUs per domain)"),
            ("vcpus = 0", "test.cfg:3: vcpus: 0 is out of range 1...8"),
            ("vcpus = 99999999999999999999", "test.cfg:3: vcpus: 99999999999999999999 is out of range 1...8 (Tern runs at most 8 vCPUs per domain)"),
            ("vcpus = -99999999999999999999", "test.cfg:3: vcpus: -99999999999999999999 is out of range 1...8"),
            ("memory = 0", "test.cfg:3: memory: 0 is out of range 1...1048576"),
            ("memory = -64", "test.cfg:3: memory: -64 is out of range 1...1048576"),
            ("memory = 99999999999999999999999", "test.cfg:3: memory: 99999999999999999999999 is out of range 1...1048576"),
            ("cpu_weight = 0", "test.cfg:3: cpu_weight: 0 is out of range 1...65535"),
            ("weight = 0x10000", "test.cfg:3: weight: 0x10000 is out of range 1...65535"),
            ("cap = 101", "test.cfg:3: cap: 101 is out of range 0...100"),
            ("cap = -1", "test.cfg:3: cap: -1 is out of range 0...100"),
        ] {
            let error = try #require(parseError(minimal + line))
            #expect(error.description == expected)
        }
    }

    @Test func unknownKey() throws {
        let error = try #require(parseError(minimal + "memory = 64\nmemroy = 64"))
        #expect(error == ConfigError(file: "test.cfg", line: 4, field: "memroy", message: "unknown key"))
        #expect(error.description == "test.cfg:4: memroy: unknown key")
        // Keys are case-sensitive, as in xl.
        #expect(parseError(minimal + "Memory = 64")?.field == "Memory")
    }

    @Test func ignoredXLKeysWarnRatherThanFail() throws {
        let keys = ["type", "builder", "vif", "disk", "on_soft_reset", "maxmem", "uuid", "seclabel",
                    "device_model_version", "bootloader", "maxvcpus", "pool", "vfb"]
        let text = minimal + keys.map { "\($0) = \"x\"" }.joined(separator: "\n")
        let (config, warnings) = try parse(text)
        #expect(config == DomainConfig(name: "t", kernel: "k"))
        #expect(warnings.count == keys.count)
        for (i, key) in keys.enumerated() {
            #expect(warnings[i] == "test.cfg:\(i + 3): \(key): ignored (xl setting that Tern does not use)")
        }
    }

    @Test func duplicateKey() throws {
        var error = try #require(parseError(minimal + "memory = 64\n\nmemory = 128"))
        #expect(error == ConfigError(file: "test.cfg", line: 5, field: "memory",
                                     message: "duplicate key (already set on line 3)"))
        error = try #require(parseError(minimal + "cpu_weight = 1\nweight = 2"))
        #expect(error.description == "test.cfg:4: weight: duplicate key (already set as cpu_weight on line 3)")
        error = try #require(parseError(minimal + "vif = []\nvif = []"))
        #expect(error.description == "test.cfg:4: vif: duplicate key (already set on line 3)")
        error = try #require(parseError(minimal + "name = \"again\""))
        #expect(error.description == "test.cfg:3: name: duplicate key (already set on line 1)")
    }

    @Test func unterminatedString() throws {
        var error = try #require(parseError(minimal + "extra = \"console=hvc0\nmemory = 64"))
        #expect(error == ConfigError(file: "test.cfg", line: 3, field: "extra", message: "unterminated string"))
        error = try #require(parseError(minimal + "disk = [ 'a', 'b ]"))
        #expect(error.description == "test.cfg:3: disk: unterminated string")
        error = try #require(parseError(minimal + "kernel2 = 'x\\"))
        #expect(error.description == "test.cfg:3: kernel2: unterminated string")
        error = try #require(parseError(minimal + "\"oops"))
        #expect(error.description == "test.cfg:3: unterminated string")
        error = try #require(parseError(minimal + #"extra = "bad \q escape""#))
        #expect(error.description == #"test.cfg:3: extra: unknown escape \q in string"#)
    }

    @Test func unterminatedList() throws {
        var error = try #require(parseError(minimal + "disk = [ 'a',\n 'b'\n"))
        #expect(error == ConfigError(file: "test.cfg", line: 3, field: "disk",
                                     message: "unterminated list (no ']' for the '[' on this line)"))
        error = try #require(parseError(minimal + "cpus = [ \"0\",\n\nmemory = 64\n"))
        #expect(error.description == "test.cfg:3: cpus: unterminated list (no ']' for the '[' on this line)")
        error = try #require(parseError(minimal + "cpus = [ \"0\"\nmemory = 64"))
        #expect(error.description == "test.cfg:3: cpus: unterminated list (no ']' for the '[' on this line)")
    }

    @Test func missingRequiredKeys() throws {
        var error = try #require(parseError("kernel = \"k\"\nmemory = 64"))
        #expect(error == ConfigError(file: "test.cfg", line: 0, field: "name", message: "missing required key"))
        #expect(error.description == "test.cfg: name: missing required key")
        error = try #require(parseError("name = \"n\""))
        #expect(error.description == "test.cfg: kernel: missing required key")
        error = try #require(parseError(""))
        #expect(error.field == "name")
        error = try #require(parseError("name = \"\"\nkernel = \"k\""))
        #expect(error.description == "test.cfg:1: name: must not be empty")
    }

    @Test func badSyntax() throws {
        let cases: [(String, String)] = [
            ("memory 64", "test.cfg:3: memory: expected '=' after the key, got 64"),
            ("memory", "test.cfg:3: memory: expected '=' after the key, got end of file"),
            ("memory =", "test.cfg:3: memory: expected a value, got end of file"),
            ("memory =\n64", "test.cfg:3: memory: expected a value, got end of line"),
            ("memory = = 64", "test.cfg:3: memory: expected a value, got '='"),
            ("memory = 64 128", "test.cfg:3: memory: expected end of line or ';' after the value, got 128"),
            ("name2 = \"a\" \"b\"", "test.cfg:3: name2: expected end of line or ';' after the value, got \"b\""),
            ("= 64", "test.cfg:3: expected a key, got '='"),
            ("9lives = 1", "test.cfg:3: invalid key \"9lives\" (keys are letters, digits and '_', not starting with a digit)"),
            ("disk = [ 'a' 'b' ]", "test.cfg:3: disk: expected ',' or ']' in list, got \"b\""),
            ("disk = [ , 'a' ]", "test.cfg:3: disk: expected a value, got ','"),
            ("extra += \"quiet\"", "test.cfg:3: extra: '+=' is not supported; give the whole value with '='"),
            ("vif = ]", "test.cfg:3: vif: expected a value, got ']'"),
        ]
        for (line, expected) in cases {
            let error = try #require(parseError(minimal + line))
            #expect(error.description == expected)
        }
    }

    @Test func firstErrorInFileOrderWins() throws {
        let error = try #require(parseError("name = \"a\"\nbogus = 1\nmemory 64\n"))
        #expect(error.description == "test.cfg:2: bogus: unknown key")
    }

    @Test func detectPanic() throws {
        #expect(try parse(minimal + "detect_panic = 0").config.detectPanic == false)
        let error = try #require(parseError(minimal + "detect_panic = \"maybe\""))
        #expect(error.description.hasPrefix("test.cfg:3: detect_panic: "))
    }

    @Test func vuartAndDirectMap() throws {
        #expect(try parse(minimal + "vuart = \"sbsa_uart\"").config.vuart == true)
        #expect(try parse(minimal + "vuart = \"none\"").config.vuart == false)
        #expect(try parse(minimal + "direct_map = 1").config.directMap == true)
        let error = try #require(parseError(minimal + "vuart = \"pl011\""))
        #expect(error.description == "test.cfg:3: vuart: expected \"sbsa_uart\" or \"none\", got \"pl011\"")
    }
}
