import Foundation
import Rehearsal
import Synchronization

/// Shows a run as it happens: image builds, boot, each step with its time,
/// and a summary at the end.
///
/// With one scenario at a time, each line appears as it happens. With
/// several at once (`run --jobs N`), each running scenario has one status
/// line at the bottom of the terminal, and a scenario's lines are printed
/// together, whole, when it ends, so that scenarios never interleave.
public final class TerminalReporter: RunObserver, Sendable {
    let t: Terminal
    let parallel: Bool
    private struct State {
        var imageClock: Stopwatch?
        /// Parallel mode: each running scenario's lines so far, and its status.
        var buffers: [String: [String]] = [:]
        var status: [(run: String, text: String)] = []
        var names: [String: String] = [:]
    }
    private let state = Mutex(State())

    public init(terminal: Terminal, parallel: Bool = false) {
        t = terminal
        self.parallel = parallel
    }

    private func emit(_ run: String, _ line: String) {
        guard parallel else { t.line(line); return }
        state.withLock { $0.buffers[run, default: []].append(line) }
    }

    private func show(_ run: String, _ text: String) {
        guard parallel else { t.status(text); return }
        let board = state.withLock { st -> [String] in
            if let i = st.status.firstIndex(where: { $0.run == run }) { st.status[i].text = text } else { st.status.append((run, text)) }
            return st.status.map(\.text)
        }
        t.board(board)
    }

    public func imageProgress(_ image: String, _ line: String) {
        let seconds = state.withLock { st -> Double in
            if st.imageClock == nil { st.imageClock = Stopwatch() }
            return st.imageClock!.seconds
        }
        // Build steps stay visible: an image build is long work worth seeing.
        t.line(t.paint("  image \(image) \(String(format: "%5.1fs", seconds))  ", .dim) + line)
    }

    public func scenarioStarted(_ s: Scenario, run: String) {
        state.withLock { $0.imageClock = nil; $0.names[run] = s.name }
        emit(run, t.paint("● \(s.name)", .bold) + t.paint("  \(s.file)", .dim))
        if parallel { show(run, "● \(s.name): starting") }
    }

    public func machineBooting(_ s: Scenario, accelerator: Accelerator, uri: String, run: String) {
        show(run, parallel ? "● \(s.name): booting \(s.machine.image)…" : t.paint("  booting \(s.machine.image) (\(accelerator.rawValue), \(uri))…", .dim))
    }

    public func machineReady(_ s: Scenario, seconds: Double, run: String) {
        emit(run, t.paint("  booted \(s.machine.image) in \(fmt(seconds))", .dim))
    }

    public func machineStarted(_ s: Scenario, note: String, run: String) {
        emit(run, t.paint("  \(note)", .dim))
    }

    private func position(_ index: Int, _ count: Int?) -> String {
        count.map { "[\(index + 1)/\($0)]" } ?? "[\(index + 1)]"
    }

    public func stepStarted(_ step: Step, index: Int, of count: Int?, run: String) {
        let name = state.withLock { $0.names[run] } ?? ""
        show(run, parallel ? "● \(name): \(position(index, count)) \(step.name)" : "  … \(position(index, count)) \(step.name)")
    }

    public func stepFinished(_ r: StepResult, index: Int, of count: Int?, run: String) {
        let mark: String
        switch r.outcome {
        case .passed: mark = t.paint("✓", .green)
        case .failed: mark = t.paint("✗", .red)
        case .infrastructure: mark = t.paint("!", .magenta)
        case .interrupted: mark = t.paint("■", .yellow)
        case .skipped: mark = "-"
        case .expectedFailure: mark = t.paint("✗", .yellow)
        }
        var attempts = ""
        if let a = r.attempts, a > 1 { attempts = " after \(a) attempts" }
        emit(run, "  \(mark) \(position(index, count)) \(r.name)" + t.paint("  \(fmt(r.seconds))\(attempts)", .dim))
        if r.outcome != .passed {
            if let why = r.expectedFailure, r.outcome == .expectedFailure {
                emit(run, "      " + t.paint("failed as expected (\(why))", .yellow))
            }
            if let m = r.message { emit(run, "      " + t.paint(m, r.outcome == .expectedFailure ? .yellow : .red)) }
            if r.outcome == .failed || r.outcome == .expectedFailure {
                for (label, text) in [("stdout", r.stdout), ("stderr", r.stderr)] {
                    guard let text, !text.isEmpty else { continue }
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                    for l in lines.suffix(5) where !(l.isEmpty && l.endIndex == text.endIndex) {
                        emit(run, t.paint("      \(label) │ ", .dim) + String(l.prefix(200)))
                    }
                }
            }
            if let c = r.console, !c.isEmpty {
                for l in c.suffix(12) { emit(run, t.paint("     console │ ", .dim) + l) }
            }
        }
    }

    public func scenarioFinished(_ r: ScenarioResult, run: String) {
        if r.steps.allSatisfy({ $0.outcome == .skipped }), r.outcome != .passed {
            emit(run, "  " + t.paint(r.message ?? "failed", .red))
            for l in r.console ?? [] { emit(run, t.paint("     console │ ", .dim) + l) }
        }
        let skipped = r.steps.filter { $0.outcome == .skipped }.count
        if skipped > 0, r.steps.count > skipped {
            emit(run, t.paint("  - \(skipped) later step\(skipped == 1 ? "" : "s") not run", .dim))
        }
        let expected = r.steps.filter { $0.outcome == .expectedFailure }.count
        if expected > 0 {
            emit(run, t.paint("  \(expected) step\(expected == 1 ? "" : "s") failed as expected (expect_failure)", .yellow))
        }
        emit(run, "  \(label(r.outcome)) in \(fmt(r.seconds))" + (r.runDirectory.map { t.paint("  run directory: \($0)", .dim) } ?? ""))
        if let bundle = r.bundle { emit(run, t.paint("  bundle: \(bundle)  (rehearse replay \(bundle))", .dim)) }
        guard parallel else { return }
        let (lines, board) = state.withLock { st -> ([String], [String]) in
            st.status.removeAll { $0.run == run }
            st.names[run] = nil
            return (st.buffers.removeValue(forKey: run) ?? [], st.status.map(\.text))
        }
        t.lines(lines)
        t.board(board)
    }

    public func scenarioRetrying(_ s: Scenario, attempt: Int, of attempts: Int, run: String) {
        t.line(t.paint("↻ \(s.name): failed; attempt \(attempt) of \(attempts) on a fresh machine", .yellow))
    }

    public func machinesKept(_ s: Scenario, machines: [String], directory: URL, run: String) {
        let which = machines == ["machine"] ? "its machine is" : "its machines (\(machines.joined(separator: ", "))) are"
        t.line(t.paint("⏸ \(s.name): failed; \(which) kept running. From another terminal:", .yellow))
        t.line("    rehearse attach \(run)\(machines == ["machine"] ? "" : " --machine NAME")   # its console (leave with Ctrl-])")
        t.line("    rehearse stop \(run)     # end the keep: the run destroys it and goes on")
        t.line("  run directory: \(directory.path); ^C here also ends the keep.")
    }

    public func paused(_ s: Scenario, before step: Step, index: Int, note: String?, machines: [String], directory: URL, run: String) {
        t.line(t.paint("⏸ \(s.name): paused before step \(index + 1) `\(step.name)`\(note.map { ": \($0)" } ?? ""). From another terminal:", .yellow))
        t.line("    rehearse attach \(run)\(machines == ["machine"] ? "" : " --machine NAME")   # its console (leave with Ctrl-])")
        t.line("    rehearse continue \(run) # go on;  rehearse stop \(run) ends the scenario here")
    }

    public func keepFailed(_ s: Scenario, reason: String, run: String) {
        t.line(t.paint("✗ \(s.name): cannot keep the machine running (\(reason)); destroying it", .red))
    }

    public func bundleFailed(_ s: Scenario, reason: String, run: String) {
        t.line(t.paint("✗ \(s.name): writing its bundle failed (\(reason)); the run directory has the evidence", .red))
    }

    /// The end of a run: one line per scenario, then the counts. Flaky,
    /// quarantined and infrastructure results are counted apart from passes
    /// and failures, so a rerun pass or a quarantined failure never reads as a pass.
    public func summary(_ results: [ScenarioResult]) {
        guard !results.isEmpty else { return }
        t.line("")
        for r in results {
            var label = label(r.outcome), note = r.outcome == .passed ? "" : r.message ?? ""
            if r.isFlaky {
                label = t.paint("FLAKY", .yellow)
                note = "passed on attempt \((r.failedAttempts?.count ?? 0) + 1); before: \(r.failedAttempts?.last?.message ?? "")"
            } else if let q = r.quarantine, r.outcome == .failed {
                label = q.hasExpired ? label : t.paint("QUARANTINED", .yellow)
                note = q.hasExpired ? note : "\(q.reason)\(q.link.map { " (\($0))" } ?? ""), until \(q.until); \(note)"
            }
            t.line("\(label)  \(r.name)" + (note.isEmpty ? "" : t.paint("  \(note)", .dim)))
        }
        let flaky = results.filter(\.isFlaky).count
        let quarantined = results.filter(\.isQuarantined).count
        let infra = results.filter { $0.outcome == .infrastructure }.count
        let passed = results.filter { $0.outcome == .passed }.count - flaky
        let failed = results.count - passed - flaky - quarantined - infra
        var counts = ["\(passed) passed"]
        if failed > 0 { counts.append("\(failed) failed") }
        if flaky > 0 { counts.append("\(flaky) flaky") }
        if quarantined > 0 { counts.append("\(quarantined) quarantined") }
        if infra > 0 { counts.append("\(infra) infrastructure") }
        t.line(passed == results.count ? "all \(passed) scenario(s) passed" : "\(results.count) scenario(s): " + counts.joined(separator: ", "))
    }

    public func label(_ o: Outcome) -> String {
        switch o {
        case .passed: return t.paint("PASS", .green)
        case .failed: return t.paint("FAIL", .red)
        case .infrastructure: return t.paint("INFRA", .magenta)
        case .interrupted: return t.paint("INTERRUPTED", .yellow)
        case .skipped: return "SKIP"
        case .expectedFailure: return t.paint("XFAIL", .yellow)
        }
    }

    func fmt(_ s: Double) -> String { s < 10 ? String(format: "%.2f s", s) : String(format: "%.1f s", s) }
}
