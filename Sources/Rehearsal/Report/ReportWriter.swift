import Foundation

/// Machine-readable reports of a run: JSON (everything) and JUnit XML (one
/// `<testcase>` per step, which CI servers ingest).
public enum ReportWriter {
    public static func json(_ results: [ScenarioResult]) throws -> Data {
        try JSONCoding.encoder.encode(RunReport(scenarios: results))
    }

    struct RunReport: Codable {
        var tool = "rehearse"
        var scenarios: [ScenarioResult]
    }

    public static func junit(_ results: [ScenarioResult]) -> String {
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        let tests = results.reduce(0) { $0 + $1.steps.count + (hasBootCase($1) ? 1 : 0) }
        let failures = results.reduce(0) { $0 + ($1.isQuarantined ? 0 : $1.steps.filter { $0.outcome == .failed }.count) }
        let errors = results.reduce(0) { acc, r in
            acc + r.steps.filter { $0.outcome == .infrastructure || $0.outcome == .interrupted }.count
                + (hasBootCase(r) && r.outcome != .passed && r.outcome != .failed ? 1 : 0)
        }
        x += "<testsuites name=\"rehearse\" tests=\"\(tests)\" failures=\"\(failures)\" errors=\"\(errors)\">\n"
        for r in results {
            let rf = r.isQuarantined ? 0 : r.steps.filter { $0.outcome == .failed }.count
            let re = r.steps.filter { $0.outcome == .infrastructure || $0.outcome == .interrupted }.count
            let skipped = r.steps.filter { $0.outcome == .skipped || (r.isQuarantined && $0.outcome == .failed) }.count
            x += "  <testsuite name=\"\(esc(r.name))\" file=\"\(esc(r.file))\" tests=\"\(r.steps.count + (hasBootCase(r) ? 1 : 0))\" failures=\"\(rf)\" errors=\"\(re)\" skipped=\"\(skipped)\" time=\"\(t(r.seconds))\" timestamp=\"\(ISO8601DateFormatter().string(from: r.startedAt))\">\n"
            let reruns = rerunElements(r)
            if let restored = r.restoredFrom {
                x += "    <properties><property name=\"restored_from\" value=\"\(esc(restored))\"/></properties>\n"
            }
            if hasBootCase(r) {
                // The machine never got as far as the steps: report the boot as the failing case.
                x += "    <testcase classname=\"\(esc(r.name))\" name=\"boot\" time=\"\(t(r.bootSeconds ?? r.seconds))\">\n"
                if r.outcome != .passed {
                    x += verdict(r, r.outcome, message: r.message ?? "", body: (r.console ?? []).joined(separator: "\n"))
                }
                x += reruns.sorted { $0.key < $1.key }.map(\.value).joined()
                x += "    </testcase>\n"
            }
            for (i, s) in r.steps.enumerated() {
                x += "    <testcase classname=\"\(esc(r.name))\" name=\"\(esc(s.name))\" file=\"\(esc(r.file))\" line=\"\(s.line)\" time=\"\(t(s.seconds))\">\n"
                switch s.outcome {
                case .passed: break
                case .skipped: x += "      <skipped message=\"an earlier step failed\"/>\n"
                case .expectedFailure:
                    x += "      <skipped type=\"expected-failure\" message=\"expected failure (\(esc(s.expectedFailure ?? ""))): \(esc(s.message ?? ""))\"/>\n"
                case .failed, .infrastructure, .interrupted:
                    x += verdict(r, s.outcome, message: s.message ?? "", body: details(s))
                }
                if !hasBootCase(r) { x += reruns[i] ?? "" }
                if let o = s.stdout, !o.isEmpty { x += "      <system-out>\(esc(o))</system-out>\n" }
                if let e = s.stderr, !e.isEmpty { x += "      <system-err>\(esc(e))</system-err>\n" }
                x += "    </testcase>\n"
            }
            x += "  </testsuite>\n"
        }
        return x + "</testsuites>\n"
    }

    /// A failing case's element: `<failure>`, `<error>`, or `<skipped>` for a
    /// failure its quarantine covers (so CI does not fail on it, and shows why).
    static func verdict(_ r: ScenarioResult, _ outcome: Outcome, message: String, body: String) -> String {
        if outcome == .failed, r.isQuarantined, let q = r.quarantine {
            let why = "quarantined until \(q.until): \(q.reason)\(q.link.map { " (\($0))" } ?? ""); \(message)"
            return "      <skipped type=\"quarantined\" message=\"\(esc(why))\">\(esc(body))</skipped>\n"
        }
        let tag = outcome == .failed ? "failure" : "error"
        return "      <\(tag) type=\"\(outcome.rawValue)\" message=\"\(esc(message))\">\(esc(body))</\(tag)>\n"
    }

    /// The failed attempts before this result (`--retries`), as the elements
    /// CI servers read: `<flakyFailure>` in a passing case, `<rerunFailure>`
    /// in a failing one, each in the case of the step that failed then
    /// (keyed by that case's index in `r.steps`; the first case when none matches).
    static func rerunElements(_ r: ScenarioResult) -> [Int: String] {
        var out: [Int: String] = [:]
        let tag = r.isFlaky ? "flakyFailure" : "rerunFailure"
        for (n, a) in (r.failedAttempts ?? []).enumerated() {
            let failing = a.steps.first { $0.outcome == .failed || $0.outcome == .infrastructure }
            let index = failing.flatMap { f in r.steps.firstIndex { $0.name == f.name } } ?? 0
            let body = failing.map(details) ?? (a.console ?? []).joined(separator: "\n")
            out[index, default: ""] += "      <\(tag) type=\"\(a.outcome.rawValue)\" message=\"\(esc("attempt \(n + 1): \(a.message ?? "")"))\">\(esc(body))</\(tag)>\n"
        }
        return out
    }

    /// A scenario that never reached its steps gets a `boot` testcase carrying the failure.
    static func hasBootCase(_ r: ScenarioResult) -> Bool {
        r.steps.isEmpty || (r.outcome != .passed && r.steps.allSatisfy { $0.outcome == .skipped })
    }

    static func details(_ s: StepResult) -> String {
        var parts: [String] = []
        if let c = s.command { parts.append("command: \(c)") }
        if let st = s.exitStatus { parts.append("exit status: \(st)") }
        if let o = s.stdout, !o.isEmpty { parts.append("stdout:\n\(o)") }
        if let e = s.stderr, !e.isEmpty { parts.append("stderr:\n\(e)") }
        if let c = s.console, !c.isEmpty { parts.append("console:\n" + c.joined(separator: "\n")) }
        return parts.joined(separator: "\n")
    }

    static func t(_ s: Double) -> String { String(format: "%.3f", s) }

    /// Escapes text for the JUnit XML and the HTML reports.
    static func esc(_ s: String) -> String { XMLText.escape(s) }
}
