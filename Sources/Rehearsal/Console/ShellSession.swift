import Foundation

/// Runs commands in the guest's root shell over the command channel, speaking
/// `ShellProtocol`.
///
/// `connect` waits for a shell to answer probes (input sent before the shell
/// reads is lost, so probing repeats), switches it into protocol mode and
/// checks the result. `run` then costs one round trip per command.
public final class ShellSession: @unchecked Sendable {
    // @unchecked: `lock` serialises whole round trips (one command at a time
    // on a channel); `io` and `send` are thread-safe themselves.
    private let lock = NSLock()
    let io: MachineIO
    /// Sends bytes until the closure says to give up; returns how many went out.
    private let send: @Sendable ([UInt8], () -> Bool) throws -> Int
    private var crlf = false
    /// Set when a command could not be stopped: the channel can't be trusted.
    private var broken: String?
    /// Whether the protocol loop answered since the last `connect` began.
    private var connected = false
    private var rng = SystemRandomNumberGenerator()

    init(io: MachineIO, send: @escaping @Sendable ([UInt8], () -> Bool) throws -> Int) {
        self.io = io
        self.send = send
    }

    private func numbers() -> (Int, Int, Int) {
        let a = Int.random(in: 1_000_000...999_999_999, using: &rng)
        let b = Int.random(in: 1_000_000...999_999_999, using: &rng)
        return (a, b, a + b)
    }

    /// Writes `text`; a guest that stops reading its console makes this time
    /// out at `deadline` (or on a signal) instead of blocking for ever.
    func write(_ text: String, deadline: Deadline) throws {
        let bytes = Array(text.utf8)
        let sent: Int
        do {
            sent = try send(bytes) { deadline.hasPassed || Interruption.shared.isRequested }
        } catch {
            throw MachineError.infrastructure("writing to the command channel failed: \(error)")
        }
        guard sent == bytes.count else {
            if let sig = Interruption.shared.requested { throw MachineError.interrupted("interrupted by \(sig) while writing to the guest") }
            throw MachineError.timeout("timed out writing to the guest: its console is not reading")
        }
    }

    /// Waits until a shell answers on the channel, then enters protocol mode.
    ///
    /// Probe until any shell answers (input sent before a shell reads is
    /// lost, so probes repeat with growing gaps); then type the bootstrap
    /// line and probe with real frames until the protocol loop answers. An
    /// interactive shell may swallow what it had read ahead, so the
    /// bootstrap is re-sent until a frame comes back.
    public func connect(deadline: Deadline) throws {
        lock.lock(); defer { lock.unlock() }
        // A new connection (usually a new boot) starts clean: whatever broke
        // the last one is gone, and until this one answers there is no shell.
        connected = false
        broken = nil
        try probe(deadline: deadline, what: "waiting for the guest's shell", kind: "R") { a, b in
            ShellProtocol.probe(a, b)
        }
        try enterProtocolMode(deadline: deadline)
        connected = true
    }

    /// Types the bootstrap line and probes with real frames until the
    /// protocol loop answers.
    private func enterProtocolMode(deadline: Deadline) throws {
        var lastBootstrap: Deadline?
        crlf = try probe(deadline: deadline, what: "setting up the guest's shell", kind: "E0") { a, b in
            // Type the bootstrap again only when a whole second brought no answer:
            // each copy execs a new shell.
            var setup = ""
            if lastBootstrap.map({ Deadline.now.uptimeNanoseconds - $0.uptimeNanoseconds > 1_000_000_000 }) ?? true {
                setup = ShellProtocol.bootstrap
                lastBootstrap = .now
            }
            return setup + ((try? ShellProtocol.invocation(":", a, b)) ?? "")
        }
    }

    /// Sends `line(a, b)` with growing gaps until the guest prints
    /// `\x01 (a+b) kind` for one of them; returns whether lines end in `\r\n`.
    @discardableResult
    private func probe(deadline: Deadline, what: String, kind: String, line: (Int, Int) throws -> String) throws -> Bool {
        var markers: [Int] = []
        var gap = 0.05
        var continuation = false
        while true {
            let (a, b, m) = numbers()
            markers.append(m)
            // A shell left inside an unclosed quote (input cut off mid-line at
            // boot) shows its continuation prompt and swallows every line: ^C
            // abandons that line, as it would for a person at the terminal.
            if continuation { try write("\u{03}", deadline: deadline) }
            try write("\n" + (try line(a, b)), deadline: deadline)
            let next = Deadline.after(seconds: gap).earlier(deadline)
            do {
                return try io.wait(until: next, what: what) { view -> Bool? in
                    for m in markers {
                        if let hit = ShellProtocol.findLine(marker: m, kind: kind, in: view.channel) {
                            view.channel.removeFirst(hit.end)
                            return hit.crlf
                        }
                    }
                    continuation = ShellProtocol.endsAtContinuationPrompt(view.channel)
                    return nil
                }
            } catch MachineError.timeout(let message) {
                if deadline.hasPassed { throw MachineError.timeout(message) }
                // Probes are tiny; a short cap keeps readiness from being noticed late.
                gap = min(gap * 1.5, 0.25)
            }
        }
    }

    /// Sends `command` without waiting for its answer, for commands that end
    /// the shell itself (a reboot). The session must `connect` again after.
    public func launch(_ command: String, deadline: Deadline) throws {
        lock.lock(); defer { lock.unlock() }
        let (a, b, _) = numbers()
        do {
            try write(try ShellProtocol.invocation(command, a, b), deadline: deadline)
        } catch let e as ProtocolError {
            throw MachineError.scenario(e.description)
        }
    }

    /// Runs `command` and returns its result; throws on deadline, incident or signal.
    /// On a deadline the command is interrupted with ^C so the shell stays usable.
    public func run(_ command: String, deadline: Deadline) throws -> CommandResult {
        lock.lock(); defer { lock.unlock() }
        if let broken { throw MachineError.infrastructure(broken) }
        guard connected else { throw MachineError.scenario("the guest's shell is not answering (it did not come back after the last boot)") }
        let (a, b, m) = numbers()
        do {
            try write(try ShellProtocol.invocation(command, a, b), deadline: deadline)
        } catch let e as ProtocolError {
            throw MachineError.scenario(e.description)
        }
        var parser = FrameParser(marker: m, crlf: crlf)
        do {
            return try awaitAnswer(&parser, until: deadline, what: "running `\(Self.short(command))`")
        } catch MachineError.timeout(let what) {
            // ^C reaches the command's process group. An interactive shell
            // then also abandons our read loop (ash and bash treat a job
            // killed by SIGINT as their own ^C), so set the loop up again.
            try? write("\u{03}", deadline: .after(seconds: 2))
            do {
                try enterProtocolMode(deadline: .after(seconds: 10))
            } catch MachineError.timeout {
                broken = "the command channel is unusable: `\(Self.short(command))` did not stop after ^C"
            }
            throw MachineError.timeout(what)
        }
    }

    private func awaitAnswer(_ parser: inout FrameParser, until deadline: Deadline, what: String) throws -> CommandResult {
        try io.wait(until: deadline, what: what) { view in
            if !view.channel.isEmpty {
                do { try parser.feed(view.channel) } catch {
                    throw MachineError.infrastructure("the guest's answer was garbled: \(error)")
                }
                view.channel.removeAll(keepingCapacity: true)
            }
            guard let r = parser.result else { return nil }
            view.channel = parser.remainder
            return r
        }
    }

    static func short(_ command: String) -> String {
        let first = command.split(separator: "\n").first.map(String.init) ?? command
        return first.count > 60 ? String(first.prefix(60)) + "…" : first
    }
}
