import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse run SCENARIO...`: boot, check, report, leave nothing behind.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run scenario files.",
        discussion: """
        Every file is checked before anything boots. Scenarios run --jobs at a time (default: \
        one per core, as many as the free memory holds); results and reports are the same as \
        one after the other. Each run keeps a directory with the console transcript, the domain \
        XML and the results (printed at the end).
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

    @Option(help: "How many scenarios run at once (default: one per core, as many as the free memory holds; 1: one after the other).")
    var jobs: Int?

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() async throws {
        let prepared = try Runner.prepare(files: scenarios)
        let jobs = min(self.jobs ?? Runner.defaultJobs(memoryMiB: prepared.map(\.scenario.machine.memoryMiB).max() ?? 256), prepared.count)
        Interruption.shared.install()
        let reporter = TerminalReporter(terminal: Terminal(), parallel: jobs > 1)
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel,
                                           runsDirectory: runDir.map { URL(fileURLWithPath: $0) }),
                            observer: reporter)
        let results = await runner.run(prepared, jobs: jobs)
        reporter.summary(results)
        throw ExitCode(ScenarioProgramOptions.finish(results, junit: junit, json: json))
    }
}
