import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse replay BUNDLE`: run a failed scenario again from its bundle.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Run a scenario again from the bundle a run left (bundle.tar.gz in its run directory).",
        discussion: """
        A failing scenario (every scenario with `run --bundle`) leaves bundle.tar.gz in its run \
        directory: the scenario file, its machine settings, the console transcript, the command \
        channel both ways with times, journals, diagnostics, results, and the digest of every \
        generation and payload it booted. Replay runs the same scenario on the same generations, \
        found by digest (an older build is fine); what is not here is refused before anything boots. \
        The new run has a run directory (and, if it fails, a bundle) of its own.
        """
    )

    @Argument(help: "A bundle.tar.gz.")
    var bundle: String

    @OptionGroup var connection: ConnectionOptions

    @OptionGroup var reports: ReportOptions

    @Flag(help: "Keep the machine running if the scenario fails again, for `rehearse attach RUN`, until `rehearse stop RUN` (or ^C).")
    var keepOnFailure = false

    @Flag(help: "Stop before every step until `rehearse continue RUN`.")
    var step = false

    func run() async throws {
        let state = StateDirectory.fromEnvironment()
        let replay = try Replay.open(bundle, state: state)
        defer { replay.close() }
        let terminal = Terminal()
        let b = replay.bundle
        terminal.line("replaying \(b.scenario): \(b.outcome.rawValue) \(Formatting.date(b.createdAt)) under \(b.host.accelerator), Rehearsal \(b.rehearsal); "
                      + b.generations.map { "\($0.name) \($0.digest.prefix(12))" }.joined(separator: ", "))
        Interruption.shared.install()
        let reporter = TerminalReporter(terminal: terminal)
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold, state: state,
                                           keepOnFailure: keepOnFailure,
                                           pauses: step ? .beforeEveryStep : isatty(STDIN_FILENO) == 1 ? .atPauseSteps : .never,
                                           pins: replay.pins),
                            observer: reporter)
        let prepared = try await replay.prepare(on: runner)
        let results = await runner.run([prepared], jobs: 1)
        reporter.summary(results)
        throw ExitCode(reports.finish(results))
    }
}
