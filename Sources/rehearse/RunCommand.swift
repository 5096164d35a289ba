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

    @OptionGroup var reports: ReportOptions

    @Option(help: ArgumentHelp("Run only the scenarios whose name, or one of whose steps' names, matches PATTERN (a shell pattern; may be repeated).", valueName: "PATTERN"))
    var filter: [String] = []

    @Option(help: ArgumentHelp("Run job I of N: the scenario files, sorted by path, dealt out in turn, so that N jobs run each file once.", valueName: "I/N"))
    var shard: String?

    @Option(help: "Run a failed scenario again on a fresh machine, up to N more times; a pass after a failure is reported as flaky.")
    var retries = 0

    @Flag(help: "A flaky scenario (failed, then passed) does not fail the run.")
    var allowFlaky = false

    @Option(help: ArgumentHelp("Known failures (YAML: scenario, step, reason, link, until): a failure listed there does not fail the run until its date.", valueName: "FILE"))
    var quarantine: String?

    @Option(help: "Put run directories here (default: <state>/runs).")
    var runDir: String?

    @Flag(help: "Keep the machine of a failing scenario running after its evidence is collected, for `rehearse attach RUN`, until `rehearse stop RUN` (or ^C).")
    var keepOnFailure = false

    @Flag(help: "Stop before every step until `rehearse continue RUN` (attach meanwhile with `rehearse attach RUN`). Without it, `pause` steps stop only when run at a terminal.")
    var step = false

    @Flag(help: "Write a bundle (bundle.tar.gz: the evidence, and what `rehearse replay` needs) for every scenario, not only for failures.")
    var bundle = false

    @Option(help: "How many scenarios run at once (default: one per core, as many as the free memory holds; 1: one after the other).")
    var jobs: Int?

    func validate() throws {
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
        if !(0...20).contains(retries) { throw ValidationError("--retries must be between 0 and 20") }
        if keepOnFailure, retries > 0 { throw ValidationError("--keep-on-failure and --retries exclude each other: a kept machine is the one to look at") }
    }

    func run() async throws {
        let known = try quarantine.map(Quarantine.load(file:))
        let selection = ScenarioSelection(patterns: filter, shard: try shard.map(ScenarioSelection.Shard.init(parsing:)))
        let files = selection.files(scenarios)
        let all = try Runner.prepare(files: files)
        let prepared = all.filter { selection.matches($0.scenario) }
        let terminal = Terminal()
        if let shard = selection.shard { terminal.line("shard \(shard): \(files.count) of \(Set(scenarios).count) scenario files") }
        if !filter.isEmpty {
            guard !prepared.isEmpty || selection.shard != nil else {
                throw RehearsalError(.badScenario, "no scenario matches --filter \(filter.joined(separator: ", "))")
            }
            terminal.line("--filter keeps \(prepared.count) of \(all.count) scenarios")
        }
        guard !prepared.isEmpty else {
            terminal.line("nothing to run")
            throw ExitCode(reports.finish([]))
        }
        let jobs = min(self.jobs ?? Runner.defaultJobs(for: prepared), prepared.count)
        Interruption.shared.install()
        let reporter = TerminalReporter(terminal: terminal, parallel: jobs > 1)
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold,
                                           runsDirectory: runDir.map { URL(fileURLWithPath: $0) }, keepOnFailure: keepOnFailure,
                                           pauses: step ? .beforeEveryStep : isatty(STDIN_FILENO) == 1 ? .atPauseSteps : .never, bundle: bundle),
                            observer: reporter)
        var results = await runner.run(prepared, jobs: jobs, retries: retries)
        if let known { results = known.apply(to: results) }
        reporter.summary(results)
        throw ExitCode(reports.finish(results, allowFlaky: allowFlaky))
    }
}
