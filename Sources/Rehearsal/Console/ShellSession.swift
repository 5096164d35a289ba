import Foundation

/// Runs commands in the guest's root shell over the command channel, speaking
/// `ShellProtocol`.
///
/// `connect` waits for a shell to answer probes (input sent before the shell
/// reads is lost, so probing repeats), switches it into protocol mode and
/// checks the result. `run` then costs one round trip per command.
public final class ShellSession: @unchecked Sendable {
    // @unchecked: used by one runner thread at a time; `io` and `send` are thread-safe.
    private let io: MachineIO
    private let send: @Sendable ([UInt8]) throws -> Void
    private var crlf = false
    /// Set when a command could not be stopped: the channel can't be trusted.
    private var broken: String?
    private var rng = SystemRandomNumberGenerator()

    init(io: MachineIO, send: @escaping @Sendable ([UInt8]) throws -> Void) {
        self.io = io
        self.send = send
    }

    private func numbers() -> (Int, Int, Int) {
        let a = Int.random(in: 1_000_000...999_999_999, using: &rng)
        let b = Int.random(in: 1_000_000...999_999_999, using: &rng)
        return (a, b, a + b)
    }

    private func write(_ text: String) throws {
        do { try send(Array(text.utf8)) } catch {
            throw MachineError.infrastructure("writing to the command channel failed: \(error)")
        }
    }

    /// Waits until a shell answers on the channel, then enters protocol mode.
    public func connect(deadline: Deadline) throws {
        // Probe with growing gaps until any probe is answered.
        var markers: [Int] = []
        var gap = 0.1
        while true {
            let (a, b, m) = numbers()
            markers.append(m)
            try write("\n" + ShellProtocol.probe(a, b))
            let next = Deadline.after(seconds: gap).earlier(deadline)
            let answered: Bool
            do {
                answered = try io.wait(until: next, what: "waiting for the guest's shell") { view in
                    for m in markers {
                        if let hit = ShellProtocol.findLine(marker: m, kind: "R", in: view.channel) {
                            view.channel.removeFirst(hit.end)
                            return true
                        }
                    }
                    return nil
                }
            } catch MachineError.timeout(let what) {
                if deadline.hasPassed { throw MachineError.timeout(what) }
                gap = min(gap * 1.5, 1.0)
                continue
            }
            if answered { break }
        }
        let (a, b, m) = numbers()
        try write(ShellProtocol.enterProtocolMode + ShellProtocol.definitions + ShellProtocol.sync(a, b))
        crlf = try io.wait(until: deadline, what: "setting up the guest's shell") { view in
            guard let hit = ShellProtocol.findLine(marker: m, kind: "S", in: view.channel) else { return nil }
            view.channel.removeFirst(hit.end)
            return hit.crlf
        }
    }

    /// Runs `command` and returns its result; throws on deadline, incident or signal.
    /// On a deadline the command is interrupted with ^C so the shell stays usable.
    public func run(_ command: String, deadline: Deadline) throws -> CommandResult {
        if let broken { throw MachineError.infrastructure(broken) }
        let (a, b, m) = numbers()
        do {
            try write(try ShellProtocol.invocation(command, a, b))
        } catch let e as ProtocolError {
            throw MachineError.scenario(e.description)
        }
        var parser = FrameParser(marker: m, crlf: crlf)
        do {
            return try awaitAnswer(&parser, until: deadline, what: "running `\(Self.short(command))`")
        } catch MachineError.timeout(let what) {
            // ^C reaches the command's process group; the shell itself traps it.
            try? write("\u{03}")
            do {
                _ = try awaitAnswer(&parser, until: .after(seconds: 3), what: "stopping the command")
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
