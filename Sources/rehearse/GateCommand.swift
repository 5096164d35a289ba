import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse gate`: rehearse a candidate, and run the upgrade on the host only if every scenario passed.
struct GateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gate",
        abstract: "Rehearse scenarios on a candidate; run COMMAND on the host only if all of them pass.",
        discussion: """
        The candidate takes the place of the generation each scenario's `machine:` names; in a \
        scenario with several machines, of every machine's, or only of those --machine names (the \
        others boot what the scenario says, so a server is upgraded under clients that are not). COMMAND \
        is run as an argument vector (never through a shell) in your terminal's foreground, as if \
        typed at the shell: it can prompt, and ^C reaches it. Every decision \
        is appended to <state>/gate-history.jsonl. Exit status: COMMAND's own when it ran; 0 with \
        --dry-run when it would have run; 1 when the gate refused; 2 bad usage; 3 no verdict \
        (infrastructure failure); 130 interrupted.

        Examples:
          rehearse gate --candidate ./result --scenario Scenarios/smoke.yaml -- nixos-rebuild switch
          rehearse gate --candidate fcos-next --scenario Scenarios/upgrade.yaml -- rpm-ostree upgrade
          rehearse gate --candidate debian-next --scenario Scenarios/upgrade-app.yaml -- apt-get dist-upgrade -y
          rehearse gate --candidate debian-next --machine server --scenario my-server-and-clients.yaml -- apt-get dist-upgrade -y
        """
    )

    @Option(help: "The candidate generation (a name from `rehearse generations`, or a recipe).") var candidate: String?
    @Flag(help: "Instead of a candidate: preview COMMAND (an APT command) on a fresh capture of this host, or of --root, as `rehearse preview` does; COMMAND then runs on the host (chrooted into --root) only if the preview passed.")
    var preview = false
    @OptionGroup var previewOptions: PreviewOptions
    @Option(name: .customLong("scenario"), help: "A scenario to rehearse (repeat for more).") var scenarios: [String] = []
    @Option(name: .customLong("machine"), help: "In a scenario with several machines, one the candidate replaces (repeat for more; default: every machine).") var machines: [String] = []
    @Flag(help: "Decide, record the decision, but never run COMMAND.") var dryRun = false
    @Flag(help: "Print the history of gate decisions and exit.") var history = false
    @Option(help: "How many scenarios are rehearsed at once (default: one per core, as many as the free memory holds).") var jobs: Int?
    @OptionGroup var connection: ConnectionOptions
    @Argument(parsing: .postTerminator, help: "The host command to run if every scenario passes (after --).") var command: [String] = []

    func validate() throws {
        if history { return }
        if preview {
            guard candidate == nil else { throw ValidationError("--preview rehearses on a capture of the host: it takes no --candidate") }
        } else {
            guard candidate != nil else { throw ValidationError("--candidate is required (or --preview)") }
            guard !scenarios.isEmpty else { throw ValidationError("at least one --scenario is required") }
            guard previewOptions.root == "/" else { throw ValidationError("--root goes with --preview") }
        }
        guard !command.isEmpty else { throw ValidationError("the command to gate follows `--`, e.g. -- apt-get dist-upgrade") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be at least 1") }
    }

    func run() async throws {
        let state = StateDirectory.fromEnvironment()
        let log = GateHistory(state: state)
        if history {
            GateHistoryTable.print(log.records())
            return
        }
        if preview { return try await runPreview(log: log) }
        let candidate = self.candidate!
        let prepared = try Runner.prepare(files: scenarios, generation: candidate, machines: machines)
        Interruption.shared.install()
        let terminal = Terminal()
        let jobs = min(self.jobs ?? Runner.defaultJobs(for: prepared), prepared.count)
        let reporter = TerminalReporter(terminal: terminal, parallel: jobs > 1)
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold, state: state), observer: reporter)
        let results = await runner.run(prepared, jobs: jobs)
        reporter.summary(results)
        let decision = GateRecord.decide(results, dryRun: dryRun)
        var record = GateRecord(candidate: candidate, results: results, decision: decision, command: command)
        // Recorded only where it chose: a single `machine:` is always replaced.
        record.machines = machines.isEmpty || !prepared.contains(where: \.scenario.hasSeveralMachines) ? nil : machines
        let shown = GateHistoryTable.display(command)
        var status: Int32
        switch decision {
        case .ran:
            terminal.line("gate: every scenario passed on \(candidate); running: \(shown)")
            do {
                status = try HostProgram.run(command)
            } catch {
                FileHandle.standardError.write(Data("rehearse: \(error)\n".utf8))
                status = 127
            }
            record.commandStatus = status
        case .wouldRun:
            terminal.line("gate: every scenario passed on \(candidate); would run (dry run): \(shown)")
            status = 0
        case .refused:
            terminal.line("gate: refused: not every scenario passed on \(candidate); not running: \(shown)")
            status = 1
        case .noVerdict:
            terminal.line("gate: no verdict (the rehearsal itself failed); not running: \(shown)")
            status = results.contains { $0.outcome == .interrupted } ? 130 : 3
        }
        do { try log.append(record) } catch {
            FileHandle.standardError.write(Data("rehearse: could not record the decision in \(log.file.path): \(error)\n".utf8))
        }
        throw ExitCode(status)
    }

    /// `gate --preview`: the preview decides; COMMAND then runs on the host,
    /// or inside the --root tree (chrooted), never on the real root for a tree.
    func runPreview(log: GateHistory) async throws {
        let what = "preview of \(previewOptions.root == "/" ? "this host" : previewOptions.root)"
        let run: ScenarioResult, digest: String?
        do {
            let result = try await PreviewCommand.preview(previewOptions, scenarios: scenarios, connection: connection, command: command)
            (run, digest) = (result.run, result.generation.digest)
        } catch let e as RehearsalError where e.code.kind != .badInput {
            // The capture or APT's download failed: still a decision to record.
            FileHandle.standardError.write(Data("rehearse: \(e.description)\n".utf8))
            (run, digest) = (ScenarioResult.stopped(name: what, file: previewOptions.root, by: e), nil)
        }
        let decision = GateRecord.decide([run], dryRun: dryRun)
        var record = GateRecord(candidate: what, results: [run], decision: decision, command: command)
        record.candidateDigest = digest
        let root = previewOptions.root
        let argv = TreeCommand.argv(root: root, command: command)
        let shown = GateHistoryTable.display(command) + (root == "/" ? "" : " (chrooted into \(root))")
        let status: Int32
        switch decision {
        case .ran:
            print("gate: the preview passed; running: \(shown)")
            var s: Int32
            do { s = try HostProgram.run(argv) } catch {
                FileHandle.standardError.write(Data("rehearse: \(error)\n".utf8))
                s = 127
            }
            record.commandStatus = s
            status = s
        case .wouldRun:
            print("gate: the preview passed; would run (dry run): \(shown)")
            status = 0
        case .refused:
            print("gate: refused: the preview failed; not running: \(shown)")
            status = 1
        case .noVerdict:
            print("gate: no verdict (the preview itself failed); not running: \(shown)")
            status = run.outcome == .interrupted ? 130 : 3
        }
        do { try log.append(record) } catch {
            FileHandle.standardError.write(Data("rehearse: could not record the decision in \(log.file.path): \(error)\n".utf8))
        }
        throw ExitCode(status)
    }
}

/// `rehearse gate --history` as a table.
enum GateHistoryTable {
    /// The argument vector as a shell would need it typed (quoted only where needed).
    static func display(_ argv: [String]) -> String {
        argv.map { a in a.isEmpty || a.contains(where: { !($0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0)) }) ? ShellProtocol.shellQuote(a) : a }
            .joined(separator: " ")
    }

    static func print(_ records: [GateRecord]) {
        guard !records.isEmpty else { Swift.print("no gate decisions yet"); return }
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.timeZone = TimeZone(identifier: "UTC")
        let rows = [["TIME (UTC)", "CANDIDATE", "DIGEST", "SCENARIOS", "DECISION", "STATUS", "COMMAND"]] + records.map { r in
            [f.string(from: r.time), r.candidate + (r.machines.map { " on " + $0.joined(separator: ",") } ?? ""), String((r.candidateDigest ?? "-").prefix(12)),
             "\(r.scenarios.filter { $0.outcome == .passed }.count)/\(r.scenarios.count) passed",
             r.decision.rawValue, r.commandStatus.map(String.init) ?? "-", display(r.command)]
        }
        let widths = (0..<rows[0].count - 1).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for r in rows {
            Swift.print((zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) } + [r.last!]).joined(separator: "  "))
        }
    }
}
