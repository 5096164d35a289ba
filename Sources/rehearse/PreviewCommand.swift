import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse preview -- COMMAND`: an APT command rehearsed on a fresh capture of this host.
struct PreviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preview",
        abstract: "Rehearse an APT command on a fresh capture of this host, and report what it will change and break.",
        discussion: """
        Captures the host (as `rehearse host capture` does), fetches on the host what COMMAND would \
        download (APT's download-only mode, into Rehearsal's cache, never the host's; no `apt-get \
        update`), boots the capture, runs COMMAND there against those packages, reboots, runs the \
        boot check and the --scenario steps, and compares the system before and after: packages, \
        units, ports, /etc, kernel, boot time. Nothing on the host changes. Exit status as for \
        `gate`: 0 the preview passed, 1 it failed, 2 bad usage (COMMAND is not an APT command), \
        3 no verdict.

        Examples:
          rehearse preview -- apt-get dist-upgrade -y
          rehearse preview --scenario my-checks.yaml --html preview.html -- apt-get install -y nginx
          rehearse preview --root /srv/chroots/bookworm -- apt-get dist-upgrade -y
        """
    )

    @OptionGroup var options: PreviewOptions
    @Option(name: .customLong("scenario"), help: "A scenario whose steps run after COMMAND and the reboot (repeatable).") var scenarios: [String] = []
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Write the preview (verdict, steps, comparison, timings) as JSON.") var json: String?
    @Option(help: "Write the before/after comparison as a self-contained HTML report.") var html: String?
    @Argument(parsing: .postTerminator, help: "The APT command to preview (after --).") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("the command to preview follows `--`, e.g. -- apt-get dist-upgrade -y") }
    }

    func run() async throws {
        let result = try await PreviewCommand.preview(options, scenarios: scenarios, connection: connection, command: command)
        do {
            if let json { try JSONCoding.encoder.encode(result).write(to: URL(fileURLWithPath: json)) }
            if let html, let c = result.comparison { try CompareReport.html(c).write(toFile: html, atomically: true, encoding: .utf8) }
        } catch {
            throw RehearsalError.infrastructure("writing the report failed: \(error)")
        }
        switch result.run.outcome {
        case .passed: throw ExitCode(0)
        case .infrastructure: throw ExitCode(3)
        case .interrupted: throw ExitCode(130)
        default: throw ExitCode(1)
        }
    }

    /// Runs a preview with the terminal's progress and prints its report; shared with `gate --preview`.
    static func preview(_ options: PreviewOptions, scenarios: [String], connection: ConnectionOptions, command: [String]) async throws -> Preview.Result {
        var preview = Preview(command: try AptCommand(command))
        preview.capture.root = options.root
        preview.capture.name = options.name
        preview.capture.excludes = options.excludes
        preview.scenarios = try Runner.prepare(files: scenarios)
        if let several = preview.scenarios.first(where: { $0.scenario.hasSeveralMachines }) {
            throw RehearsalError.badScenario(file: several.scenario.file, line: nil, "preview runs a scenario's steps on the one captured machine; this one has several machines")
        }
        Interruption.shared.install()
        let terminal = Terminal()
        let reporter = TerminalReporter(terminal: terminal)
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold), observer: reporter)
        if let kernel = options.kernel {
            preview.capture.kernelFrom = try await runner.generation(try Candidate.named(kernel, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil)))
        }
        let frozen = preview
        let result = try await frozen.run(runner: runner) { e in
            switch e {
            case let .capture(c): HostGroupCommand.Capture.show(c, terminal)
            case let .phase(p): terminal.status(p)
            }
        }
        terminal.finishLine()
        for line in report(result, width: 100) { terminal.line(line) }
        return result
    }

    static func report(_ r: Preview.Result, width: Int) -> [String] {
        var out: [String] = []
        out.append("\(r.passed ? "PREVIEW PASSED" : "PREVIEW FAILED"): `\(r.command.joined(separator: " "))` on \(r.root == "/" ? "this host" : r.root) (capture \(r.generation.shortDigest))")
        if let m = r.run.message { out.append("  \(m)") }
        if let failed = r.run.steps.first(where: { $0.outcome == .failed || $0.outcome == .infrastructure }) {
            out.append("  failed at: \(failed.name)\(failed.message.map { ": \($0)" } ?? "")")
            let said = (failed.stdout ?? "") + (failed.stderr.map { "\n" + $0 } ?? "")
            for l in said.split(separator: "\n").suffix(30) { out.append("    " + l) }
        }
        out.append("  fetched on the host: \(r.downloaded.count) package(s)")
        if let c = r.comparison { out += CompareSummary.lines(c, width: width) }
        let order = ["capture", "download", "boot", "stage", "command", "reboot", "steps", "probes"]
        out.append("time: " + order.compactMap { k in r.seconds[k].map { String(format: "%@ %.1f s", k, $0) } }.joined(separator: ", "))
        if let d = r.run.runDirectory { out.append("run directory: \(d)") }
        return out
    }
}

/// What `preview` and `gate --preview` share: the host to capture.
struct PreviewOptions: ParsableArguments {
    @Option(help: "Preview on this tree instead of / (its own APT sources, lists and dpkg database).") var root = "/"
    @Option(help: "The capture's generation name.") var name = "host"
    @Option(name: .customLong("exclude"), help: "Leave out of the capture paths matching this rsync pattern (repeatable).") var excludes: [String] = []
    @Option(name: .customLong("kernel"), help: "For a tree with no kernel in /boot: boot it with this generation's kernel.") var kernel: String?
}
