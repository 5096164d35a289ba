import ArgumentParser
import Foundation
import Rehearsal

/// `rehearse run SCENARIO...`: boot, check, report, leave nothing behind.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files, one after the other.",
        discussion: """
        Every file is checked before anything boots. Each run keeps a directory with the \
        console transcript, the domain XML and the results (printed at the end).
        """
    )

    @Argument(help: "Scenario files (YAML).")
    var scenarios: [String]

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Write JUnit XML here (one <testcase> per step).")
    var junit: String?

    @Option(help: "Write the full results as JSON here.")
    var json: String?

    @Option(help: "Put run directories here (default: <state>/runs).")
    var runDir: String?

    func run() throws {
        let prepared: [Runner.Prepared]
        do {
            prepared = try Runner.prepare(files: scenarios)
        } catch let e as ScenarioError {
            fail(e.description, status: 2)
        }
        Interruption.shared.install()
        let terminal = Terminal()
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel,
                                           runsDirectory: runDir.map { URL(fileURLWithPath: $0) }),
                            observer: TerminalReporter(terminal: terminal))
        var results: [ScenarioResult] = []
        for p in prepared {
            if Interruption.shared.isRequested { break }
            results.append(runner.run(p))
        }
        TerminalReporter(terminal: terminal).summary(results)
        do {
            if let junit { try ReportWriter.junit(results).write(toFile: junit, atomically: true, encoding: .utf8) }
            if let json { try ReportWriter.json(results).write(to: URL(fileURLWithPath: json)) }
        } catch {
            fail("cannot write the report: \(error)", status: 3)
        }
        let worst = results.map(\.exitStatus).max() ?? 0
        // Interrupted beats everything, then infrastructure, then failure.
        let status: Int32 = results.contains { $0.outcome == .interrupted } ? 130 : worst
        throw ExitCode(status)
    }
}
