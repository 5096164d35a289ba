import Foundation

/// The serial console as a log: lines with their time since power-on, a
/// transcript file, checks for trouble, and the text that
/// `wait_for_console` searches.
///
/// Not thread-safe on its own: `MachineIO` owns it and calls it under its lock.
public struct ConsoleLog: Sendable {
    private let started: Stopwatch
    private let transcript: FileHandle?
    private let allowed: [ConsolePattern]
    /// The current line, not yet ended.
    private var partial: [UInt8] = []
    private var partialStarted: Double?
    /// Every finished line, cleaned of `\r` and terminal escapes.
    public private(set) var lines: [String] = []
    /// Trouble seen so far, in order.
    public private(set) var trouble: [ConsoleTrouble] = []
    /// Reports that the guest's CPU was starved (soft lockups, RCU stalls): kept, not trouble.
    public private(set) var starvation: [String] = []
    /// Lines left of the dump of the last starvation report.
    private var inStarvationReport = 0
    /// Where the next `wait_for_console` starts searching (a line index):
    /// each wait consumes the text up to its match.
    public var searchFrom = 0

    public init(started: Stopwatch, transcript: URL?, allowed: [ConsolePattern]) {
        self.started = started
        self.allowed = allowed
        if let transcript {
            _ = FileManager.default.createFile(atPath: transcript.path, contents: nil)
            self.transcript = FileHandle(forWritingAtPath: transcript.path)
        } else {
            self.transcript = nil
        }
    }

    /// Adds bytes from the console; returns trouble found in lines they finished.
    public mutating func append(_ bytes: [UInt8]) -> [ConsoleTrouble] {
        var found: [ConsoleTrouble] = []
        for b in bytes {
            if partialStarted == nil { partialStarted = started.seconds }
            if b == 10 {
                if let t = finishLine() { found.append(t) }
            } else {
                partial.append(b)
                if partial.count > 16_384, let t = finishLine() { found.append(t) }
            }
        }
        return found
    }

    /// Ends the partial line (at end of stream).
    public mutating func flush() {
        if !partial.isEmpty { _ = finishLine() }
        try? transcript?.synchronize()
    }

    private mutating func finishLine() -> ConsoleTrouble? {
        let line = Self.clean(partial)
        let t = partialStarted ?? started.seconds
        partial.removeAll(keepingCapacity: true)
        partialStarted = nil
        lines.append(line)
        transcript?.write(Data(String(format: "[%9.3f] %@\n", t, line).utf8))
        if ConsoleTrouble.starvation.matches(line) {
            starvation.append(line)
            inStarvationReport = ConsoleTrouble.starvationReportLines
            return nil
        }
        let hit = ConsoleTrouble.check(line, allowed: allowed)
        if inStarvationReport > 0 {
            // The report's own dump (registers, its call trace) ends with its task.
            inStarvationReport = line.hasSuffix("</TASK>") ? 0 : inStarvationReport - 1
            if hit?.kind == "call trace" { return nil }
        }
        if let hit { trouble.append(hit) }
        return hit
    }

    /// The text not yet consumed by a wait, including the unfinished line.
    public var unsearchedText: String {
        let done = lines[min(searchFrom, lines.count)...].joined(separator: "\n")
        let rest = Self.clean(partial)
        return rest.isEmpty ? done : (done.isEmpty ? rest : done + "\n" + rest)
    }

    /// The last `n` lines, for failure messages.
    public func tail(_ n: Int) -> [String] {
        var out = Array(lines.suffix(n))
        let rest = Self.clean(partial)
        if !rest.isEmpty { out.append(rest) }
        return Array(out.suffix(n))
    }

    /// Drops `\r` and ANSI escape sequences (busybox asks for the cursor
    /// position with `ESC[6n`), and decodes what is left as UTF-8.
    public static func clean(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == 0x1b {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "[") {
                    i += 1
                    while i < bytes.count, !(0x40...0x7e).contains(bytes[i]) { i += 1 }
                }
                i += 1
                continue
            }
            if b != 13 && b != 0 { out.append(b) }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
