import ArgumentParser
import Foundation
import Rehearsal

/// A scenario written in Swift, as a program of its own. Conform a `@main`
/// type to it and write `run`; `main()` gives the program the command line
/// and the output of `rehearse run`: live progress, a run directory,
/// `--junit` and `--json` reports, and the same exit status (0 passed,
/// 1 failed, 3 infrastructure failure, 130 interrupted).
///
///     @main struct Smoke: ScenarioProgram {
///         static func run(_ scenario: ScenarioContext) async throws {
///             let m = try await scenario.machine(MachineDeclaration(.generation("tiny")))
///             try await m.succeed("uname -r")
///         }
///     }
public protocol ScenarioProgram {
    /// The scenario's name in reports (default: the type's name).
    static var name: String { get }
    /// Seconds for the whole scenario, boots included.
    static var timeout: Double { get }
    /// The check after every boot of a systemd guest.
    static var bootCheck: BootCheck { get }
    /// Declares the machines and drives them.
    static func run(_ scenario: ScenarioContext) async throws
}

extension ScenarioProgram {
    public static var name: String { String(describing: Self.self) }
    public static var timeout: Double { Scenario.defaultTimeout }
    public static var bootCheck: BootCheck { BootCheck() }

    public static func main() async {
        let options = ScenarioProgramOptions.parseOrExit()
        Interruption.shared.install()
        let reporter = TerminalReporter(terminal: Terminal())
        let runner = Runner(options: .init(uri: options.connection.connect, accelerator: options.connection.accel, cold: options.connection.cold,
                                           runsDirectory: options.runDir.map { URL(fileURLWithPath: $0) },
                                           keepOnFailure: options.keepOnFailure,
                                           pauses: options.step ? .beforeEveryStep : isatty(STDIN_FILENO) == 1 ? .atPauseSteps : .never),
                            observer: reporter)
        let result = await runner.run(name, timeout: timeout, bootCheck: bootCheck) { try await run($0) }
        reporter.summary([result])
        exit(options.reports.finish([result]))
    }
}

/// The command line of a scenario program (and the report options `rehearse run` shares).
public struct ScenarioProgramOptions: ParsableCommand {
    public static let configuration = CommandConfiguration(abstract: "Run this scenario (written in Swift) and report pass or fail.")
    public init() {}

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var reports: ReportOptions
    @Option(help: "Put run directories here (default: <state>/runs).") var runDir: String?
    @Flag(help: "Keep the machines running if the scenario fails, for `rehearse attach RUN`, until `rehearse stop RUN`.") var keepOnFailure = false
    @Flag(help: "Stop before every step until `rehearse continue RUN`.") var step = false
}

/// Where a run's reports go: `rehearse run` and every scenario program take these.
public struct ReportOptions: ParsableArguments {
    @Option(help: "Write JUnit XML here (one <testcase> per step).") public var junit: String?
    @Option(help: "Write the full results as JSON here.") public var json: String?
    @Option(help: "Write TAP version 14 here (one subtest per scenario, one test point per step).") public var tap: String?
    @Option(help: "Write an HTML page here (every scenario and step, failures with their output and console).") public var html: String?

    public init() {}

    /// Writes the reports and returns the exit status for `results`
    /// (a flaky pass fails the run unless `allowFlaky`).
    public func finish(_ results: [ScenarioResult], allowFlaky: Bool = false) -> Int32 {
        do {
            if let junit { try ReportWriter.junit(results).write(toFile: junit, atomically: true, encoding: .utf8) }
            if let json { try ReportWriter.json(results).write(to: URL(fileURLWithPath: json)) }
            if let tap { try ReportWriter.tap(results).write(toFile: tap, atomically: true, encoding: .utf8) }
            if let html { try RunPage.html(results, allowFlaky: allowFlaky).write(toFile: html, atomically: true, encoding: .utf8) }
        } catch {
            FileHandle.standardError.write(Data("rehearse: cannot write the report: \(error)\n".utf8))
            return RehearsalError.Kind.infrastructure.exitStatus
        }
        return ScenarioResult.exitStatus(of: results, allowFlaky: allowFlaky)
    }
}

/// Options every command that starts machines takes.
public struct ConnectionOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "libvirt URI (default: $LIBVIRT_DEFAULT_URI, else libvirt's embedded QEMU driver, which needs no daemon).")
    public var connect: String?

    @Option(help: ArgumentHelp("CPU acceleration: tcg or kvm (default: KVM only where it really boots a guest).", valueName: "tcg|kvm"))
    public var accel: Accelerator?

    @Flag(help: "Boot every machine; never start one from a saved running state (warm start).")
    public var cold = false

    public init() {}
}

extension Accelerator: ExpressibleByArgument {}
