import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse attach RUN`: the console of a machine a failed run keeps (`run --keep-on-failure`).
struct AttachCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach the terminal to the console of a machine kept by `run --keep-on-failure`.",
        discussion: """
        RUN is the run's id (as printed when the machine was kept, or its start) or its run \
        directory. The terminal gets the machine's first serial console, with the root shell for \
        people. Leave with Ctrl-] (or EOF): the machine stays kept until `rehearse stop RUN`.

        Example:
          rehearse attach 20261203-104012-1a2b3c
        """
    )

    @Argument(help: "The run: its id, the start of its id, or its run directory.") var run: String
    @Option(help: "Which machine of the scenario (default: the first).") var machine: String?
    @Option(help: "Where run directories are (default: <state>/runs).") var runDir: String?

    func run() async throws {
        let runner = Runner(options: .init(runsDirectory: runDir.map { URL(fileURLWithPath: $0) }))
        let socket = try UnixSocket.connect(to: try runner.keptSocket(run))
        defer { socket.close() }
        socket.write("attach \(machine ?? "")\n")
        guard let answer = socket.readLine() else { throw RehearsalError(.unknownRun, "run \(run) did not answer") }
        guard answer == "ok" else { throw RehearsalError(.unknownRun, "run \(run): " + answer.replacingOccurrences(of: "error ", with: "")) }
        let terminal = Terminal()
        terminal.line("rehearse attach: the console of run \(run). " + (isatty(STDIN_FILENO) == 1 ? "Leave with Ctrl-]." : "Leave by ending the input."))
        let raw = RawTerminal()
        let reason = await ConsoleAttachment.run(escape: raw != nil, send: { bytes in
            socket.write(bytes) ? nil : "the run ended the keep"
        }, ended: {
            await withCheckedContinuation { c in
                Thread {
                    while let bytes = socket.read() { ConsoleAttachment.output(bytes) }
                    c.resume(returning: "the run ended the keep")
                }.start()
            }
        }, finally: { socket.close() })
        raw?.restore()
        terminal.line("\nrehearse attach: \(reason).")
    }
}
