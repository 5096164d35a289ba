import Foundation
import Synchronization
@testable import Rehearsal

/// A scripted guest at the far end of the command channel: it plays the POSIX
/// shell (or getty) that `ShellSession` talks to, reading what the session
/// writes and answering by feeding bytes into a `MachineIO`, as libvirt's
/// event thread does for a real guest.
///
/// Deterministic on purpose: no timers, no threads of its own. Answers are
/// delivered synchronously from `trySend`, or later by an explicit `emit` or
/// `deliverHeld`, so a test's outcome never depends on scheduling.
final class FakeGuest: ChannelWriter {
    /// How the guest answers one command (`__rh A B 'cmd'`).
    enum Reply: Sendable {
        case output(stdout: [UInt8], stderr: [UInt8], status: Int32)
        /// The command hangs until ^C arrives.
        case never
        /// The answer's bytes on the wire, cut at these offsets (those past
        /// its end are ignored), held until `deliverHeld` hands them over one
        /// piece at a time.
        case split(stdout: [UInt8], stderr: [UInt8], status: Int32, cuts: [Int])
        /// The guest resets itself mid-command: back to a plain shell, and
        /// libvirt reports `.rebooted`.
        case reboot
        /// The command ends just as its deadline passes: its answer goes out
        /// only with the next byte the host writes (the ^C), which then finds
        /// the loop idle.
        case late(stdout: [UInt8], status: Int32)

        static func ok(_ text: String, status: Int32 = 0) -> Reply {
            .output(stdout: Array(text.utf8), stderr: [], status: status)
        }
    }

    /// What ^C does to the protocol loop while a command runs.
    enum Interrupt: Sendable, CaseIterable {
        /// The shell gives up the loop (ash and bash when a job dies of
        /// SIGINT): a plain shell is left, which needs the bootstrap again.
        case abandonsLoop
        /// The loop survives (its trap prints `\x01 M I`) and reports status 130.
        case reportsStatus
    }

    /// A getty and login in front of the shell.
    struct Login: Sendable {
        var user: String
        var password: String
    }

    struct Options: Sendable {
        /// The tty echoes input (until the bootstrap's `stty -echo`).
        var echo = false
        /// The tty turns `\n` into `\r\n` on output, and `stty raw` could not stop it.
        var crlf = false
        /// What the plain shell prints after each line, like `/ # `.
        var prompt = ""
        /// The first writes are lost: no shell is reading yet.
        var dropFirstWrites = 0
        /// Accepts at most this many bytes per `trySend` (a full UART).
        var maxBytesPerWrite: Int?
        /// The shell starts inside an unclosed single quote (input cut off
        /// at boot): it shows `> ` and swallows every line until ^C.
        var unclosedQuote = false
        /// The shell that read the bootstrap line loses whatever followed
        /// it in the same write (an interactive shell's read-ahead).
        var swallowAfterBootstrap = false
        var interrupt = Interrupt.abandonsLoop
        var login: Login?
    }

    /// What the guest is doing with its input.
    private enum Mode: Sendable, Equatable {
        /// login asked for a user name (nil) or for this user's password.
        case getty(user: String?)
        case plain
        /// The protocol loop, idle.
        case loop
        /// Running a command that never ends (frame marker).
        case hanging(Int)
    }

    /// Counters and records the tests read.
    struct Record: Sendable {
        var writes = 0
        var lostWrites = 0
        var probes = 0
        var bootstraps = 0
        var interrupts = 0
        /// Commands run in the loop, unquoted, without the session's `:` checks.
        var commands: [String] = []
        /// A command arrived while an earlier answer was still held back.
        var overlapped = false
        /// Lines the guest did not recognise.
        var strays: [String] = []
    }

    private struct State: Sendable {
        var mode: Mode
        var echo: Bool
        var line: [UInt8] = []
        var inQuote: Bool
        var deaf = false
        var toDrop: Int
        var held: [[UInt8]] = []
        var record = Record()
        /// The last frame's marker: the loop's SIGINT trap prints it.
        var lastMarker = 0
        /// A `.late` answer, sent with the next byte received.
        var late: [UInt8]?
    }

    /// What one write made the guest do, acted on after the lock is released.
    private struct Outbox {
        var bytes: [UInt8] = []
        var rebooted = false
    }

    let io: MachineIO
    let options: Options
    private let handler: @Sendable (String) -> Reply
    private let state: Mutex<State>

    init(io: MachineIO, _ options: Options = Options(), handler: @escaping @Sendable (String) -> Reply = { _ in .ok("") }) {
        self.io = io
        self.options = options
        self.handler = handler
        state = Mutex(State(mode: options.login == nil ? .plain : .getty(user: nil), echo: options.echo,
                            inQuote: options.unclosedQuote, toDrop: options.dropFirstWrites))
    }

    var record: Record { state.withLock { $0.record } }

    // MARK: ChannelWriter

    func trySend(_ bytes: ArraySlice<UInt8>) throws -> Int? {
        var out = Outbox()
        let accepted: Int? = state.withLock { s in
            if s.deaf { return nil }
            s.record.writes += 1
            if s.toDrop > 0 {
                s.toDrop -= 1
                s.record.lostWrites += 1
                return bytes.count
            }
            let n = min(bytes.count, options.maxBytesPerWrite ?? bytes.count)
            for b in bytes.prefix(n) {
                if !receive(b, &s, &out) { break }
            }
            return n
        }
        send(out)
        return accepted
    }

    // MARK: What a test makes the guest do

    /// Prints `text` on the channel as it is (noise: prompts, kernel lines, look-alikes).
    func emit(_ text: String) { emit(Array(text.utf8)) }
    func emit(_ bytes: [UInt8]) { io.channelEvent(.data(bytes)) }

    /// From now on `trySend` returns nil: the guest stopped reading its console.
    func stopReading() { state.withLock { $0.deaf = true } }

    /// The guest resets itself: a fresh plain shell (or getty) that needs
    /// probing and the bootstrap again, losing its first `dropping` writes.
    /// libvirt reports the reset unless `quietly`.
    func reboot(dropping: Int = 0, quietly: Bool = false) {
        state.withLock { s in
            reset(&s)
            s.toDrop = dropping
        }
        if !quietly { io.lifecycle(.rebooted) }
    }

    /// Hands over the held answer of a `.split` command one piece at a time,
    /// each once the session has taken the one before from the channel, so
    /// the session really sees every cut. Waits for the command to arrive first.
    func deliverHeld(within seconds: Double = 5) async {
        // Yielding, not sleeping: the session runs on the other side within microseconds.
        let limit = Deadline.after(seconds: seconds)
        while state.withLock({ $0.held.isEmpty }), !limit.hasPassed { await Task.yield() }
        while let piece = state.withLock({ s in s.held.isEmpty ? nil : s.held.removeFirst() }) {
            io.channelEvent(.data(piece))
            while !(await channelDrained()), !limit.hasPassed { await Task.yield() }
        }
    }

    /// Whether the session has consumed everything delivered (peeks without consuming).
    private func channelDrained() async -> Bool {
        (try? await io.wait(until: .now, what: "peeking") { view in view.channel.isEmpty ? true : nil }) ?? false
    }

    // MARK: The shell

    private func send(_ out: Outbox) {
        if !out.bytes.isEmpty { io.channelEvent(.data(out.bytes)) }
        if out.rebooted { io.lifecycle(.rebooted) }
    }

    /// The tty's output processing.
    private func wire(_ text: String) -> [UInt8] { wire(Array(text.utf8)) }
    private func wire(_ bytes: [UInt8]) -> [UInt8] {
        guard options.crlf else { return bytes }
        var out: [UInt8] = []
        for b in bytes {
            if b == 10 { out.append(13) }
            out.append(b)
        }
        return out
    }

    private func reset(_ s: inout State) {
        s.mode = options.login == nil ? .plain : .getty(user: nil)
        s.echo = options.echo
        s.line.removeAll()
        s.inQuote = false
        s.held.removeAll()
    }

    /// Takes one input byte; false when the rest of this write is lost.
    private func receive(_ b: UInt8, _ s: inout State, _ out: inout Outbox) -> Bool {
        let typingPassword = if case .getty(user: .some) = s.mode { true } else { false }
        if s.echo, !typingPassword { out.bytes += b == 3 ? wire("^C") : wire([b]) }
        if b == 3 { interrupt(&s, &out); return true }
        guard b == 10 else { s.line.append(b); return true }
        let line = String(decoding: s.line, as: UTF8.self)
        s.line.removeAll()
        return take(line, &s, &out)
    }

    /// ^C: the tty discards the line being typed and signals the foreground job.
    private func interrupt(_ s: inout State, _ out: inout Outbox) {
        s.record.interrupts += 1
        s.line.removeAll()
        switch s.mode {
        case .hanging(let m):
            switch options.interrupt {
            case .reportsStatus:
                out.bytes += wire("\u{01}\(m)I\n\u{01}\(m)E130\n")
                s.mode = .loop
            case .abandonsLoop:
                s.mode = .plain
                out.bytes += wire(options.prompt)
            }
        case .plain:
            s.inQuote = false
            out.bytes += wire("\n" + options.prompt)
        case .loop:
            // The idle loop's trap runs; the loop reads on.
            out.bytes += (s.late ?? []) + wire("\u{01}\(s.lastMarker)I\n")
            s.late = nil
        case .getty:
            break
        }
    }

    private func take(_ line: String, _ s: inout State, _ out: inout Outbox) -> Bool {
        switch s.mode {
        case .getty(nil):
            if line.isEmpty { out.bytes += wire("\nweb-1 login: ") } else {
                s.mode = .getty(user: line)
                out.bytes += wire("Password: ")
            }
        case .getty(let user?):
            if let login = options.login, user == login.user, line == login.password {
                s.mode = .plain
                out.bytes += wire("\nLast login: Sat Jan  1 00:00:00 UTC 2000 on ttyS1\nroot@web-1:~# ")
            } else {
                s.mode = .getty(user: nil)
                out.bytes += wire("\n\nLogin incorrect\nweb-1 login: ")
            }
        case .hanging:
            break // nobody reads: the command holds the terminal
        case .plain:
            let oddQuotes = line.filter { $0 == "'" }.count % 2 == 1
            if s.inQuote || oddQuotes {
                // Inside a quoted string the line is just more of it.
                if oddQuotes { s.inQuote.toggle() }
                out.bytes += wire(s.inQuote ? "> " : options.prompt)
                return true
            }
            let goOn = shellLine(line, inLoop: false, &s, &out)
            if s.mode == .plain { out.bytes += wire(options.prompt) }
            return goOn
        case .loop:
            return shellLine(line, inLoop: true, &s, &out)
        }
        return true
    }

    /// One line evaluated by a shell: the bootstrap, a probe, an invocation, or noise.
    private func shellLine(_ line: String, inLoop: Bool, _ s: inout State, _ out: inout Outbox) -> Bool {
        if line + "\n" == ShellProtocol.bootstrap {
            // stty -echo took effect; the exec'd loop reads from here on.
            s.record.bootstraps += 1
            s.echo = false
            s.mode = .loop
            return !options.swallowAfterBootstrap
        }
        if let (a, b) = Self.probeNumbers(line) {
            s.record.probes += 1
            out.bytes += wire("\u{01}\(a + b)R\n")
            return true
        }
        if line.hasPrefix("__rh ") {
            guard inLoop else { out.bytes += wire("sh: __rh: not found\n"); return true }
            guard let (a, b, command) = Self.invocation(line) else { s.record.strays.append(line); return true }
            if !s.held.isEmpty { s.record.overlapped = true }
            let reply: Reply
            if command == ":" { reply = .ok("") } else {
                s.record.commands.append(command)
                reply = handler(command)
            }
            answer(reply, marker: a + b, &s, &out)
            return true
        }
        if !line.allSatisfy(\.isWhitespace) {
            s.record.strays.append(line)
            if !inLoop { out.bytes += wire("sh: \(line.prefix(20)): not found\n") }
        }
        return true
    }

    private func answer(_ reply: Reply, marker m: Int, _ s: inout State, _ out: inout Outbox) {
        s.lastMarker = m
        switch reply {
        case let .output(stdout, stderr, status):
            out.bytes += wire(Self.frame(m, stdout, stderr, status))
        case .never:
            out.bytes += wire("\u{01}\(m)B\n") // __rh prints it before the command starts
            s.mode = .hanging(m)
        case let .split(stdout, stderr, status, cuts):
            let bytes = wire(Self.frame(m, stdout, stderr, status))
            var start = 0
            for cut in cuts.sorted() where cut > start && cut < bytes.count {
                s.held.append(Array(bytes[start..<cut]))
                start = cut
            }
            s.held.append(Array(bytes[start...]))
        case let .late(stdout, status):
            s.late = wire(Self.frame(m, stdout, [], status))
        case .reboot:
            reset(&s)
            out.rebooted = true
        }
    }

    /// What `__rh` prints for one command.
    static func frame(_ m: Int, _ stdout: [UInt8], _ stderr: [UInt8], _ status: Int32) -> [UInt8] {
        var f = Array("\u{01}\(m)B\n".utf8) + stdout
        if !stderr.isEmpty { f += Array("\u{01}\(m)e\n".utf8) + stderr }
        return f + Array("\u{01}\(m)E\(status)\n".utf8)
    }

    /// A and B from `ShellProtocol.probe(A, B)`'s line, checked against it.
    static func probeNumbers(_ line: String) -> (Int, Int)? {
        let head = "printf \\\\001%sR\\\\n $((", tail = "))"
        guard line.hasPrefix(head), line.hasSuffix(tail) else { return nil }
        let sum = line.dropFirst(head.count).dropLast(tail.count).split(separator: "+")
        guard sum.count == 2, let a = Int(sum[0]), let b = Int(sum[1]) else { return nil }
        return ShellProtocol.probe(a, b) == line + "\n" ? (a, b) : nil
    }

    /// A, B and the command from `ShellProtocol.invocation`'s line.
    static func invocation(_ line: String) -> (Int, Int, String)? {
        let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "__rh", let a = Int(parts[1]), let b = Int(parts[2]),
              let command = unquote(parts[3]) else { return nil }
        return (a, b, command)
    }

    /// Undoes `ShellProtocol.invocation`'s quoting: single-quoted pieces,
    /// `\'` between them, and `"$__rhnl"` for each newline.
    static func unquote(_ s: Substring) -> String? {
        let newline = "\"$__rhnl\""
        var out = ""
        var i = s.startIndex
        while i < s.endIndex {
            if s[i...].hasPrefix(newline) {
                out += "\n"
                i = s.index(i, offsetBy: newline.count)
            } else if s[i] == "'" {
                let open = s.index(after: i)
                guard let close = s[open...].firstIndex(of: "'") else { return nil }
                out += s[open..<close]
                i = s.index(after: close)
            } else if s[i] == "\\" {
                let next = s.index(after: i)
                guard next < s.endIndex else { return nil }
                out.append(s[next])
                i = s.index(after: next)
            } else {
                return nil
            }
        }
        return out
    }
}
