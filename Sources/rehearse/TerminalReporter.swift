import Foundation
import Rehearsal

/// Shows a run as it happens: image builds, boot, each step with its time,
/// and a summary at the end.
final class TerminalReporter: RunObserver, @unchecked Sendable {
    // @unchecked: `imageClock` is only touched from the runner's thread.
    let t: Terminal
    private var imageClock: Stopwatch?

    init(terminal: Terminal) { t = terminal }

    func imageProgress(_ image: String, _ line: String) {
        if imageClock == nil { imageClock = Stopwatch() }
        let s = String(format: "%5.1fs", imageClock!.seconds)
        // Build steps stay visible: an image build is long work worth seeing.
        t.line(t.paint("  image \(image) \(s)  ", .dim) + line)
    }

    func scenarioStarted(_ s: Scenario) {
        imageClock = nil
        t.line(t.paint("● \(s.name)", .bold) + t.paint("  \(s.file)", .dim))
    }

    func machineBooting(_ s: Scenario, accelerator: Accelerator, uri: String) {
        t.status(t.paint("  booting \(s.machine.image) (\(accelerator.rawValue), \(uri))…", .dim))
    }

    func machineReady(_ s: Scenario, seconds: Double) {
        t.line(t.paint("  booted \(s.machine.image) in \(fmt(seconds))", .dim))
    }

    func stepStarted(_ step: Step, index: Int, of count: Int) {
        t.status("  … [\(index + 1)/\(count)] \(step.name)")
    }

    func stepFinished(_ r: StepResult, index: Int, of count: Int) {
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
        t.line("  \(mark) [\(index + 1)/\(count)] \(r.name)" + t.paint("  \(fmt(r.seconds))\(attempts)", .dim))
        if r.outcome != .passed {
            if let why = r.expectedFailure, r.outcome == .expectedFailure {
                t.line("      " + t.paint("failed as expected (\(why))", .yellow))
            }
            if let m = r.message { t.line("      " + t.paint(m, r.outcome == .expectedFailure ? .yellow : .red)) }
            if r.outcome == .failed || r.outcome == .expectedFailure {
                for (label, text) in [("stdout", r.stdout), ("stderr", r.stderr)] {
                    guard let text, !text.isEmpty else { continue }
                    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                    for l in lines.suffix(5) where !(l.isEmpty && l.endIndex == text.endIndex) {
                        t.line(t.paint("      \(label) │ ", .dim) + String(l.prefix(200)))
                    }
                }
            }
            if let c = r.console, !c.isEmpty {
                for l in c.suffix(12) { t.line(t.paint("     console │ ", .dim) + l) }
            }
        }
    }

    func scenarioFinished(_ r: ScenarioResult) {
        if r.steps.allSatisfy({ $0.outcome == .skipped }), r.outcome != .passed {
            t.line("  " + t.paint(r.message ?? "failed", .red))
            for l in r.console ?? [] { t.line(t.paint("     console │ ", .dim) + l) }
        }
        let skipped = r.steps.filter { $0.outcome == .skipped }.count
        if skipped > 0, r.steps.count > skipped {
            t.line(t.paint("  - \(skipped) later step\(skipped == 1 ? "" : "s") not run", .dim))
        }
        let expected = r.steps.filter { $0.outcome == .expectedFailure }.count
        if expected > 0 {
            t.line(t.paint("  \(expected) step\(expected == 1 ? "" : "s") failed as expected (expect_failure)", .yellow))
        }
        let word = label(r.outcome)
        t.line("  \(word) in \(fmt(r.seconds))" + (r.runDirectory.map { t.paint("  run directory: \($0)", .dim) } ?? ""))
    }

    func summary(_ results: [ScenarioResult]) {
        guard !results.isEmpty else { return }
        let passed = results.filter { $0.outcome == .passed }.count
        t.line("")
        for r in results {
            t.line("\(label(r.outcome))  \(r.name)" + (r.outcome == .passed ? "" : t.paint("  \(r.message ?? "")", .dim)))
        }
        let failed = results.count - passed
        t.line(failed == 0 ? "all \(passed) scenario(s) passed" : "\(failed) of \(results.count) scenario(s) did not pass")
    }

    func label(_ o: Outcome) -> String {
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
