import Foundation

/// Runs helper programs. Output is always read from one pipe shared by stdout and stderr, so that what a
/// person sees is in the order the program wrote it.
enum Subprocess {
    struct Captured {
        var status: Int32
        var output: String
    }

    /// Runs to completion and returns everything the program printed. For short-lived helpers (swift
    /// build, objcopy, QEMU's dumpdtb), which end by themselves.
    static func capture(_ executable: URL, _ arguments: [String], in directory: URL? = nil,
                        environment: [String: String]? = nil) throws(TernToolError) -> Captured {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        if let environment { process.environment = environment }
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            throw .io("cannot start \(executable.path): \(error.localizedDescription)")
        }
        // Read before waiting: a program that fills the pipe would otherwise never exit.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Captured(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    struct Streamed {
        /// nil when the program was stopped because it ran out of time.
        var status: Int32?
        var timedOut: Bool
        /// The program was ended because `stopWhen` matched a line.
        var stopped: Bool
        var lines: [String]
        /// When each line arrived, in seconds since the program was started.
        var lineTimes: [TimeInterval]
    }

    /// How long a program gets between SIGTERM and SIGKILL.
    static let terminationGrace: TimeInterval = 2

    /// Runs with a deadline, handing each output line to `onLine` as soon as it is complete.
    static func stream(_ executable: URL, _ arguments: [String], in directory: URL? = nil,
                       passStandardInput: Bool, timeout: TimeInterval,
                       stopWhen: (@Sendable (String) -> Bool)? = nil,
                       typeWhen: (@Sendable (String) -> String?)? = nil,
                       lastWords: (@Sendable (Keyboard) -> Void)? = nil,
                       onLine: @escaping @Sendable (String) -> Void) throws(TernToolError) -> Streamed {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        // QEMU's -nographic console reads stdin; /dev/null keeps an unattended run from stealing the
        // terminal (and from leaving it in raw mode if QEMU has to be killed).
        // With `typeWhen` the program's stdin is a pipe that answers lines as a person at the console would.
        let keyboard = typeWhen == nil && lastWords == nil ? nil : Pipe()
        process.standardInput = keyboard ?? (passStandardInput ? FileHandle.standardInput : FileHandle.nullDevice)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe

        let exited = DispatchSemaphore(value: 0)
        let stop = StopFlag()
        let collector = LineCollector(onLine: { line in
            onLine(line)
            if let typeWhen, let keyboard, let text = typeWhen(line) {
                try? keyboard.fileHandleForWriting.write(contentsOf: Data(text.utf8))
            }
            if let stopWhen, stopWhen(line), stop.set() { exited.signal() }
        })
        process.terminationHandler = { _ in exited.signal() }
        do {
            collector.start = Date()
            try withTerminationSignalsUnblocked { try process.run() }
        } catch {
            throw .io("cannot start \(executable.path): \(error.localizedDescription)")
        }
        let drained = DispatchSemaphore(value: 0)
        let reader = pipe.fileHandleForReading
        let thread = Thread {
            while true {
                let data = reader.availableData
                if data.isEmpty { break }
                collector.feed(data)
            }
            collector.finish()
            drained.signal()
        }
        thread.start()

        var timedOut = false
        let ended = exited.wait(timeout: .now() + timeout)
        if ended == .timedOut || stop.isSet {
            timedOut = ended == .timedOut
            // Before a stuck program is killed, it may be asked what it is doing.
            if timedOut, let lastWords, let keyboard {
                lastWords(Keyboard(pipe: keyboard, collector: collector))
            }
            process.terminate()
            if exited.wait(timeout: .now() + terminationGrace) == .timedOut {
                kill(process.processIdentifier, SIGKILL)
                // Bounded because Foundation notices the exit only once every process holding its
                // status socket is gone, and a grandchild may hold it.
                _ = exited.wait(timeout: .now() + 5)
            }
        }
        // The pipe reaches end-of-file once the program (and anything it started) is gone; the bound is
        // for a grandchild that inherited the pipe and lives on.
        _ = drained.wait(timeout: .now() + 5)
        let stopped = !timedOut && stop.isSet
        return Streamed(status: timedOut || stopped ? nil : process.terminationStatus, timedOut: timedOut,
                        stopped: stopped, lines: collector.lines, lineTimes: collector.times)
    }
}

/// Typing at a running program and watching what it answers, for `lastWords`.
struct Keyboard: Sendable {
    let pipe: Pipe
    let collector: LineCollector

    func type(_ text: String) {
        try? pipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
    }

    /// Waits up to `seconds` for a line that satisfies `match`, among lines that arrive from now on.
    func await(seconds: TimeInterval, _ match: (String) -> Bool) -> Bool {
        let start = collector.lines.count
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if collector.lines.dropFirst(start).contains(where: match) { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}

/// Runs `body` (which starts a child) with SIGTERM, SIGINT and SIGHUP unblocked on this thread. A child
/// inherits its parent thread's signal mask, and threads of Dispatch (Swift Testing runs tests on them)
/// block those signals: QEMU started from there could not be asked to terminate, only killed.
func withTerminationSignalsUnblocked<R>(_ body: () throws -> R) rethrows -> R {
    var signals = sigset_t()
    sigemptyset(&signals)
    for s in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, s) }
    var saved = sigset_t()
    pthread_sigmask(SIG_UNBLOCK, &signals, &saved)
    defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
    return try body()
}

/// Set once, from the reader thread, when a line asks for the program to be stopped.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    /// Returns true for the call that set it.
    func set() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if value { return false }
        value = true
        return true
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Splits a byte stream into lines. Written to by the reader thread, read by the caller after the
/// reader is done, hence the lock.
final class LineCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var pending: [UInt8] = []
    private var collected: [String] = []
    private var arrivals: [TimeInterval] = []
    private let onLine: @Sendable (String) -> Void
    /// Set just before the program starts; line times count from here.
    var start = Date()

    init(onLine: @escaping @Sendable (String) -> Void) {
        self.onLine = onLine
    }

    var lines: [String] {
        lock.lock()
        defer { lock.unlock() }
        return collected
    }

    var times: [TimeInterval] {
        lock.lock()
        defer { lock.unlock() }
        return arrivals
    }

    func feed(_ data: Data) {
        var complete: [String] = []
        lock.lock()
        for byte in data {
            if byte == 0x0A {
                complete.append(Self.text(pending))
                pending.removeAll(keepingCapacity: true)
            } else {
                pending.append(byte)
            }
        }
        collected += complete
        let now = Date().timeIntervalSince(start)
        arrivals += complete.map { _ in now }
        lock.unlock()
        for line in complete { onLine(line) }
    }

    /// A last line without a newline still counts: QEMU's final message may lack one.
    func finish() {
        lock.lock()
        let last = pending.isEmpty ? nil : Self.text(pending)
        pending.removeAll()
        if let last {
            collected.append(last)
            arrivals.append(Date().timeIntervalSince(start))
        }
        lock.unlock()
        if let last { onLine(last) }
    }

    /// Serial consoles end lines with CR LF; the CR is noise to a line-oriented reader.
    private static func text(_ bytes: [UInt8]) -> String {
        var end = bytes.count
        while end > 0 && bytes[end - 1] == 0x0D { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}
