import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse shell GENERATION`: boot a machine and hand the terminal to its root shell.
struct ShellCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shell",
        abstract: "Boot a generation and attach the terminal to a root shell on it, to look around.",
        discussion: """
        The terminal is attached to the machine's first serial console (ttyS0, the root shell \
        for people; the kernel's messages appear there too). Leave with Ctrl-] (or end the \
        input: EOF); the machine is then destroyed, as it is on SIGINT or SIGTERM when the \
        input is not a terminal. Nothing typed is saved to the generation: the machine writes \
        to an overlay of its own. Its console transcript stays in the run directory shown on entry.

        Examples:
          rehearse shell debian
          rehearse shell debian-demo2 --scenario Scenarios/upgrade-app.yaml
          rehearse shell ./result          # a NixOS system, as nixos-rebuild build-vm would boot it
        """
    )

    /// Ctrl-], as in `virsh console` and telnet.
    static let escapeByte: UInt8 = 0x1d

    @Argument(help: "What to boot: a generation or recipe name, a disk image, or a NixOS system.") var candidate: String
    @Option(help: "Boot with this scenario's `machine:` settings (memory, CPUs, payload, console login …).") var scenario: String?
    @Option(help: "Put the run directory here (default: <state>/runs).") var runDir: String?
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        let terminal = Terminal()
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel,
                                           runsDirectory: runDir.map { URL(fileURLWithPath: $0) }),
                            observer: TerminalReporter(terminal: terminal))
        Interruption.shared.install()
        let (machine, directory) = try await runner.shellMachine(candidate, scenario: scenario)
        let raw = RawTerminal()
        terminal.finishLine()
        terminal.line("rehearse shell: \(candidate) is up (\(machine.name), run directory \(directory.path)).")
        terminal.line(raw != nil ? "Leave with Ctrl-] (the machine is then destroyed)." : "Leave by ending the input (the machine is then destroyed).")
        let reason = await attach(machine, escape: raw != nil)
        raw?.restore()
        await machine.destroy()
        terminal.line("\nrehearse shell: \(reason); the machine is destroyed.")
    }

    /// Copies the console to stdout and stdin to the console until the
    /// escape key, EOF, a signal, or the machine stopping. Returns why it ended.
    private func attach(_ machine: Machine, escape: Bool) async -> String {
        machine.mirrorConsole { bytes in bytes.withUnsafeBufferPointer { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) } }
        defer { machine.mirrorConsole(to: nil) }
        let input = StandardInput.chunks()
        return await withTaskGroup(of: String.self) { group in
            group.addTask {
                // Any incident ends the wait: the guest powered off, crashed, or a signal came.
                do {
                    _ = try await machine.io.wait(until: .after(seconds: 365 * 86400), what: "the shell session") { _ -> Bool? in nil }
                    return "the session ended"
                } catch {
                    return "\(error)"
                }
            }
            group.addTask {
                // Wake the shell so that its prompt shows.
                try? await machine.typeOnConsole([0x0d], deadline: .after(seconds: 10))
                for await chunk in input {
                    if escape, let i = chunk.firstIndex(of: Self.escapeByte) {
                        try? await machine.typeOnConsole(Array(chunk[..<i]), deadline: .after(seconds: 10))
                        return "left with Ctrl-]"
                    }
                    do { try await machine.typeOnConsole(chunk, deadline: .after(seconds: 30)) } catch { return "\(error)" }
                }
                return "end of input"
            }
            let first = await group.next() ?? "the session ended"
            group.cancelAll()
            return first
        }
    }
}

/// The standard input as chunks of bytes, read on a thread of its own (a
/// blocking `read` must not hold a thread of the cooperative pool).
enum StandardInput {
    static func chunks() -> AsyncStream<[UInt8]> {
        AsyncStream { continuation in
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { break }
                    if case .terminated = continuation.yield(Array(buffer[..<n])) { break }
                }
                continuation.finish()
            }
            thread.start()
        }
    }
}

/// The controlling terminal in raw mode (keys go to the guest as typed,
/// ^C included), restored by `restore()`. Nil when stdin is not a terminal.
final class RawTerminal {
    private var saved = termios()

    init?() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        // Keep output processing, so that "\n" from our own lines still returns the carriage.
        raw.c_oflag |= tcflag_t(OPOST)
        guard tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0 else { return nil }
    }

    func restore() { _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
}
