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

    @Argument(help: "What to boot: a generation or recipe name, a disk image, or a NixOS system.") var candidate: String
    @Option(help: "Boot with this scenario's `machine:` settings (memory, CPUs, payload, console login …).") var scenario: String?
    @Option(help: "In a --scenario with several machines, the one whose settings to boot with (default: the first).") var machine: String?
    @Option(help: "Put the run directory here (default: <state>/runs).") var runDir: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard machine == nil || scenario != nil else { throw ValidationError("--machine names a machine of a --scenario; give one") }
    }

    func run() async throws {
        let terminal = Terminal()
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold,
                                           runsDirectory: runDir.map { URL(fileURLWithPath: $0) }),
                            observer: TerminalReporter(terminal: terminal))
        Interruption.shared.install()
        let (machine, directory) = try await runner.shellMachine(candidate, scenario: scenario, machine: machine)
        terminal.finishLine()
        terminal.line("rehearse shell: \(candidate) is up (\(machine.name), run directory \(directory.path)).")
        terminal.line(isatty(STDIN_FILENO) == 1 ? "Leave with Ctrl-] (the machine is then destroyed)." : "Leave by ending the input (the machine is then destroyed).")
        let raw = RawTerminal()
        let reason = await attach(machine, escape: raw != nil)
        raw?.restore()
        await machine.destroy()
        terminal.line("\nrehearse shell: \(reason); the machine is destroyed.")
    }

    /// Copies the console to stdout and the terminal to the console until
    /// the escape key, EOF, a signal, or the machine stopping. Returns why it ended.
    private func attach(_ machine: Machine, escape: Bool) async -> String {
        machine.mirrorConsole { bytes in ConsoleAttachment.output(bytes) }
        defer { machine.mirrorConsole(to: nil) }
        // Wake the shell so that its prompt shows.
        try? await machine.typeOnConsole([0x0d], deadline: .after(seconds: 10))
        return await ConsoleAttachment.run(escape: escape, send: { bytes in
            do { try await machine.typeOnConsole(bytes, deadline: .after(seconds: 30)); return nil } catch { return "\(error)" }
        }, ended: {
            // Any incident ends the wait: the guest powered off, crashed, or a signal came.
            do {
                _ = try await machine.io.wait(until: .after(seconds: 365 * 86400), what: "the shell session") { _ -> Bool? in nil }
                return "the session ended"
            } catch {
                return "\(error)"
            }
        })
    }
}
