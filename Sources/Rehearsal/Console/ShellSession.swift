import Foundation
import Libvirt

/// Where a shell session's bytes go: the current boot's command channel
/// (a libvirt console stream), or a test's fake guest.
public protocol ChannelWriter: Sendable {
    /// Writes what it can now; nil when it would block (the guest isn't reading).
    func trySend(_ bytes: ArraySlice<UInt8>) throws -> Int?
}

extension ConsoleStream: ChannelWriter {}

/// Writes all of `bytes` to the stream `writer` gives (nil: powered off).
/// A guest that stops reading makes this time out at `deadline` (or end on
/// a signal, or cancellation) instead of blocking for ever.
func sendAll(_ bytes: [UInt8], to writer: () -> ChannelWriter?, device: String, deadline: Deadline) async throws {
    var offset = 0
    var pause: UInt64 = 100_000
    while offset < bytes.count {
        guard let stream = writer() else { throw RehearsalError.infrastructure("the machine is powered off") }
        let n: Int?
        do { n = try stream.trySend(bytes[offset...]) } catch {
            throw RehearsalError.infrastructure("writing to \(device) failed: \(error)")
        }
        if let n {
            offset += n
            pause = 100_000
            continue
        }
        if let sig = Interruption.shared.requested { throw RehearsalError.interrupted("interrupted by \(sig) while writing to the guest") }
        if Task.isCancelled { throw RehearsalError.interrupted("cancelled while writing to the guest") }
        if deadline.hasPassed { throw RehearsalError.timeout("timed out writing to the guest: \(device) is not reading") }
        // The guest's UART is full; it drains at serial speed.
        try? await Task.sleep(nanoseconds: pause)
        pause = min(pause * 2, 10_000_000)
    }
}

/// Runs commands in the guest's root shell over the command channel, speaking
/// `ShellProtocol`.
///
/// `connect` waits for a shell to answer probes (input sent before the shell
/// reads is lost, so probing repeats), switches it into protocol mode and
/// checks the result. `run` then costs one round trip per command. Round
/// trips are taken one at a time (`exclusive`): the channel carries one
/// command at a time, whichever task asks.
public actor ShellSession {
    let io: MachineIO
    /// The channel of the current boot, nil while powered off.
    private let channel: @Sendable () -> ChannelWriter?
    private var crlf = false
    /// Set when a command could not be stopped: the channel can't be trusted.
    private var broken: String?
    /// Whether the protocol loop answered since the last `connect` began.
    private var connected = false
    private var rng = SystemRandomNumberGenerator()
    private var busy = false
    private var queue: [CheckedContinuation<Void, Never>] = []

    /// Seconds a command stopped with ^C, and then its loop, get to show they are done.
    let interruptGrace: Double

    init(io: MachineIO, interruptGrace: Double = 10, channel: @escaping @Sendable () -> ChannelWriter?) {
        self.io = io
        self.interruptGrace = interruptGrace
        self.channel = channel
    }

    /// Runs `body` as the only round trip on the channel.
    private func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        if busy { await withCheckedContinuation { queue.append($0) } } else { busy = true }
        defer { if queue.isEmpty { busy = false } else { queue.removeFirst().resume() } }
        return try await body()
    }

    private func numbers() -> (Int, Int, Int) {
        let a = Int.random(in: 1_000_000...999_999_999, using: &rng)
        let b = Int.random(in: 1_000_000...999_999_999, using: &rng)
        return (a, b, a + b)
    }

    /// Writes `text` (recorded in the channel trace as `traced`, when given:
    /// a password is not); a guest that stops reading its console makes this time
    /// out at `deadline` (or on a signal, or cancellation) instead of blocking for ever.
    func write(_ text: String, traced: String? = nil, deadline: Deadline) async throws {
        io.channelSent(Array((traced ?? text).utf8))
        try await sendAll(Array(text.utf8), to: channel, device: "the command channel", deadline: deadline)
    }

    /// Waits until a shell answers on the channel, then enters protocol mode.
    ///
    /// Probe until any shell answers (input sent before a shell reads is
    /// lost, so probes repeat with growing gaps); then type the bootstrap
    /// line and probe with real frames until the protocol loop answers. An
    /// interactive shell may swallow what it had read ahead, so the
    /// bootstrap is re-sent until a frame comes back.
    public func connect(deadline: Deadline) async throws {
        try await exclusive { try await connectNow(deadline: deadline) }
    }

    private func connectNow(deadline: Deadline) async throws {
        // A new connection (usually a new boot) starts clean: whatever broke
        // the last one is gone, and until this one answers there is no shell.
        connected = false
        broken = nil
        try await probe(deadline: deadline, what: "waiting for the guest's shell", kind: "R") { a, b in
            ShellProtocol.probe(a, b)
        }
        try await enterProtocolMode(deadline: deadline)
        connected = true
    }

    /// Reconnects to the protocol loop of a restored machine, which was
    /// running when its state was saved: frames only, no bootstrap. Falls
    /// back to `connect` when no frame comes back within a few seconds.
    public func resume(deadline: Deadline) async throws {
        try await exclusive {
            connected = false
            broken = nil
            do {
                // The loop evaluates the plain probe itself: no subshell to fork.
                crlf = try await probe(deadline: Deadline.after(seconds: 5).earlier(deadline), what: "waiting for the restored guest's shell", kind: "R") { a, b in
                    ShellProtocol.probe(a, b)
                }
                connected = true
            } catch RehearsalError.Code.timeout where !deadline.hasPassed {
                try await connectNow(deadline: deadline)
            }
        }
    }

    /// Types the bootstrap line and probes with real frames until the
    /// protocol loop answers.
    private func enterProtocolMode(deadline: Deadline) async throws {
        var lastBootstrap: Deadline?
        crlf = try await probe(deadline: deadline, what: "setting up the guest's shell", kind: "E0") { a, b in
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
    private func probe(deadline: Deadline, what: String, kind: String, line: (Int, Int) throws -> String) async throws -> Bool {
        var markers: [Int] = []
        var gap = 0.05
        var continuation = false
        while true {
            let (a, b, m) = numbers()
            markers.append(m)
            // A shell left inside an unclosed quote (input cut off mid-line at
            // boot) shows its continuation prompt and swallows every line: ^C
            // abandons that line, as it would for a person at the terminal.
            if continuation { try await write("\u{03}", deadline: deadline) }
            try await write("\n" + (try line(a, b)), deadline: deadline)
            let next = Deadline.after(seconds: gap).earlier(deadline)
            let seen = markers
            do {
                return try await io.wait(until: next, what: what) { view -> Bool? in
                    for m in seen {
                        if let hit = ShellProtocol.findLine(marker: m, kind: kind, in: view.channel) {
                            view.channel.removeFirst(hit.end)
                            return hit.crlf
                        }
                    }
                    return nil
                }
            } catch let e as RehearsalError where e.code == .timeout {
                let message = e.message
                continuation = io.channelEndsAtContinuationPrompt
                if deadline.hasPassed { throw RehearsalError.timeout(message) }
                // Probes are tiny; a short cap keeps readiness from being noticed late.
                gap = min(gap * 1.5, 0.25)
            }
        }
    }

    /// Sends `command` without waiting for its answer, for commands that end
    /// the shell itself (a reboot). The session must `connect` again after.
    public func launch(_ command: String, deadline: Deadline) async throws {
        try await exclusive { try await launchNow(command, deadline: deadline) }
    }

    private func launchNow(_ command: String, deadline: Deadline) async throws {
        let (a, b, _) = numbers()
        try await write(try ShellProtocol.invocation(command, a, b), deadline: deadline)
    }

    /// Runs `command` and returns its result; throws on deadline, incident or signal.
    /// On a deadline the command is interrupted with ^C so the shell stays usable.
    public func run(_ command: String, deadline: Deadline) async throws -> CommandResult {
        try await exclusive { try await runNow(command, deadline: deadline) }
    }

    private func runNow(_ command: String, deadline: Deadline) async throws -> CommandResult {
        if let broken { throw RehearsalError.infrastructure(broken) }
        guard connected else { throw RehearsalError.scenario("the guest's shell is not answering (it did not come back after the last boot)") }
        let (a, b, m) = numbers()
        try await write(try ShellProtocol.invocation(command, a, b), deadline: deadline)
        var parser = FrameParser(marker: m, crlf: crlf)
        do {
            return try await awaitAnswer(&parser, until: deadline, what: "running `\(Self.short(command))`")
        } catch let e as RehearsalError where e.code == .timeout {
            try await interrupt(marker: m, command: command, endSeen: parser.reachedEnd, leftover: parser.pending)
            throw e
        }
    }

    /// Stops the command of frame `m` with ^C and leaves the loop ready for
    /// the next one, or marks the session broken.
    ///
    /// ^C reaches the command's process group; the loop's trap prints
    /// `\x01 M I` and `__rh` then ends the frame (`E130`). Nothing more is
    /// typed until both are seen: a line typed while the signal is still
    /// pending can be cut in two by it, and the loop would run the pieces.
    /// When they don't come (an interactive shell gave the loop up, as ash
    /// and bash do when a job dies of SIGINT, or the command ignores ^C),
    /// the session connects again as after a boot.
    /// `endSeen` and `leftover` are what the frame's parser had taken when the deadline passed.
    private func interrupt(marker m: Int, command: String, endSeen: Bool, leftover: [UInt8]) async throws {
        try? await write("\u{03}", deadline: .after(seconds: 2))
        let settled = Deadline.after(seconds: interruptGrace)
        var seen = (trap: false, end: endSeen)
        var restored = leftover.isEmpty
        do {
            try await io.wait(until: settled, what: "stopping `\(Self.short(command))`") { view -> Bool? in
                if !restored { view.channel = leftover + view.channel; restored = true }
                // Either may come first (the command may have ended just before the ^C).
                let trap = seen.trap ? nil : ShellProtocol.findLine(marker: m, kind: "I", in: view.channel)?.end
                let end = seen.end ? nil : ShellProtocol.findFrameEnd(marker: m, in: view.channel)
                seen = (seen.trap || trap != nil, seen.end || end != nil)
                view.channel.removeFirst(max(trap ?? 0, end ?? 0))
                return seen.trap && seen.end ? true : nil
            }
            // Both seen: the signal was taken and the loop is idle. Check it still reads.
            try await probe(deadline: .after(seconds: interruptGrace), what: "checking the loop after ^C", kind: "E0") { a, b in
                try ShellProtocol.invocation(":", a, b)
            }
            return
        } catch RehearsalError.Code.timeout {}
        do {
            try await connectNow(deadline: .after(seconds: interruptGrace))
        } catch RehearsalError.Code.timeout {
            broken = "the command channel is unusable: `\(Self.short(command))` did not stop after ^C"
        }
    }

    private func awaitAnswer(_ parser: inout FrameParser, until deadline: Deadline, what: String) async throws -> CommandResult {
        try await io.wait(until: deadline, what: what) { view in
            if !view.channel.isEmpty {
                do { try parser.feed(view.channel) } catch let e as RehearsalError {
                    throw RehearsalError.infrastructure("the guest's answer was garbled: \(e.message)", underlying: e)
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
