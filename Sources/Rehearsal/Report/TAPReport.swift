import Foundation

/// A run as TAP version 14 (testanything.org): one subtest per scenario, one
/// test point per step, and a YAML block with the message, the place and the
/// output for each step that did not pass.
///
///     TAP version 14
///     1..1
///     # Subtest: smoke
///         1..2
///         ok 1 - uname -r
///         not ok 2 - test -e /nope
///           ---
///           message: "exit status 0, expected non-zero"
///           severity: fail
///           at: "Scenarios/smoke.yaml:12"
///           ...
///     not ok 1 - smoke
///
/// An expected failure is `not ok … # TODO`; a skipped step is `ok … # SKIP`.
/// A quarantined failure is `not ok … # TODO quarantined …` (TODO: it does
/// not fail the run); a flaky pass is `ok`, with its failed attempts in the
/// YAML block. A scenario that never reached its steps has one test point,
/// `boot`, as in the JUnit report.
extension ReportWriter {
    public static func tap(_ results: [ScenarioResult]) -> String {
        var x = "TAP version 14\n1..\(results.count)\n"
        for (n, r) in results.enumerated() {
            x += "# Subtest: \(description(r.name))\n"
            var points: [String] = []
            if hasBootCase(r) {
                points.append(point(r.outcome == .passed, 1, "boot", directive: quarantined(r),
                                    yaml: r.outcome == .passed ? nil : diagnostics(r.message ?? "", severity: r.outcome,
                                                                                   at: r.file, output: (r.console ?? []).joined(separator: "\n"))))
            } else {
                for (i, s) in r.steps.enumerated() {
                    points.append(stepPoint(s, i + 1, file: r.file, quarantine: quarantined(r)))
                }
            }
            x += indent("1..\(points.count)\n" + points.joined(), by: 4)
            let ok = r.outcome == .passed
            var yaml = ok ? nil : diagnostics(r.message ?? r.outcome.rawValue, severity: r.outcome, at: r.file, output: nil)
            if r.isFlaky {
                let before = (r.failedAttempts ?? []).enumerated().map { "attempt \($0.offset + 1): \($0.element.message ?? "failed")" }
                yaml = "---\nflaky: \(quoted("passed on attempt \(before.count + 1)"))\nfailed attempts: \(quoted(before.joined(separator: "; ")))\n...\n"
            }
            x += point(ok, n + 1, r.name, directive: quarantined(r), yaml: yaml)
        }
        return x
    }

    /// The TODO directive of a failure its quarantine covers.
    static func quarantined(_ r: ScenarioResult) -> String? {
        guard r.isQuarantined, let q = r.quarantine else { return nil }
        return "TODO quarantined until \(q.until): \(q.reason)\(q.link.map { " (\($0))" } ?? "")"
    }

    static func stepPoint(_ s: StepResult, _ n: Int, file: String, quarantine: String? = nil) -> String {
        let at = "\(file):\(s.line)"
        switch s.outcome {
        case .passed:
            return point(true, n, s.name, directive: nil, yaml: nil)
        case .skipped:
            return point(true, n, s.name, directive: "SKIP an earlier step failed", yaml: nil)
        case .expectedFailure:
            return point(false, n, s.name, directive: "TODO expected failure: \(s.expectedFailure ?? "")",
                         yaml: diagnostics(s.message ?? "", severity: s.outcome, at: at, output: details(s)))
        case .failed, .infrastructure, .interrupted:
            return point(false, n, s.name, directive: s.outcome == .failed ? quarantine : nil,
                         yaml: diagnostics(s.message ?? s.outcome.rawValue, severity: s.outcome, at: at, output: details(s)))
        }
    }

    static func point(_ ok: Bool, _ n: Int, _ name: String, directive: String?, yaml: String?) -> String {
        var line = "\(ok ? "ok" : "not ok") \(n) - \(description(name))"
        if let directive { line += " # \(description(directive))" }
        return line + "\n" + (yaml.map { indent($0, by: 2) } ?? "")
    }

    /// A YAML block; every value a JSON string, which is YAML too.
    static func diagnostics(_ message: String, severity: Outcome, at: String, output: String?) -> String {
        var y = "---\nmessage: \(quoted(message))\nseverity: \(severity.rawValue)\nat: \(quoted(at))\n"
        if let output, !output.isEmpty { y += "output: \(quoted(output))\n" }
        return y + "...\n"
    }

    /// A test point's description: one line, and `#` escaped (it starts a directive).
    static func description(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "#", with: "\\#")
            .split(whereSeparator: \.isNewline).joined(separator: " ")
    }

    static func quoted(_ s: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let data = (try? encoder.encode(s)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    static func indent(_ text: String, by n: Int) -> String {
        let pad = String(repeating: " ", count: n)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { pad + $0 + "\n" }.joined()
    }
}
