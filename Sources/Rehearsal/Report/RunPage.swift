import Foundation

/// The HTML page of a run (`run --html FILE`): one self-contained file with
/// the verdict, a table of every scenario (filterable), and per scenario its
/// machine, boots, steps with their time and output, the failure with its
/// console excerpt, earlier attempts (`--retries`), its quarantine entry and
/// links into its run directory. Every string from a guest is escaped.
public enum RunPage {
    static let style = """
        .verdict{padding:.6em 1em;border-radius:6px;border:2px solid}
        .verdict.passed{border-color:#2e7d32;background:#edf7ed}.verdict.failed{border-color:#c62828;background:#fdecea}
        .verdict.infrastructure,.verdict.interrupted{border-color:#8d6e00;background:#fff8e1}
        .o{font-weight:600}.o.passed{color:#1b5e20}.o.failed{color:#b71c1c}.o.infrastructure,.o.interrupted{color:#8d6e00}
        .o.skipped,.o.expected-failure,.o.quarantined{color:#616161}.o.flaky{color:#e65100}
        section.scenario{border:1px solid #ddd;border-radius:6px;padding:.2em 1em 1em;margin:1.5em 0}
        .meta{color:#555}.message{background:#fdecea;padding:.4em .6em;border-radius:4px}
        """

    /// The page; its verdict is the run's exit status (`allowFlaky` as given to `run`).
    public static func html(_ results: [ScenarioResult], allowFlaky: Bool = false) -> String {
        let status = ScenarioResult.exitStatus(of: results, allowFlaky: allowFlaky)
        let verdict = status == 0 ? "passed" : status == 1 ? "failed" : status == 3 ? "infrastructure" : "interrupted"
        let total = results.reduce(0) { $0 + $1.seconds }
        var h = "<h1>rehearse run</h1>\n"
        h += "<p class=\"verdict \(verdict)\" id=\"verdict\"><strong>\(e(verdict.uppercased()))</strong>: "
            + "\(results.count) scenario\(results.count == 1 ? "" : "s"), " + counts(results) + " · \(fmt(total)) of scenario time</p>\n"
        h += "<h2>Scenarios</h2>\n" + HTMLPage.filter("scenarios")
        h += "<table id=\"scenarios\"><tr><th>scenario</th><th>outcome</th><th>time</th><th>boot</th><th>generation</th><th>steps</th></tr>"
        for (i, r) in results.enumerated() {
            let passed = r.steps.filter { $0.outcome == .passed || $0.outcome == .expectedFailure }.count
            h += "<tr><td><a href=\"#scenario-\(i + 1)\">\(e(r.name))</a></td><td>\(badge(r))</td><td>\(fmt(r.seconds))</td>"
                + "<td>\(r.bootSeconds.map(fmt) ?? "–")</td><td>\(e(r.image ?? "–"))\(r.imageDigest.map { " <code>\(e(String($0.prefix(12))))</code>" } ?? "")</td>"
                + "<td>\(passed)/\(r.steps.count)</td></tr>"
        }
        h += "</table>\n"
        for (i, r) in results.enumerated() { h += scenario(r, number: i + 1) }
        return HTMLPage.document(title: "rehearse run: \(verdict)", style: style, body: h)
    }

    static func scenario(_ r: ScenarioResult, number: Int) -> String {
        var h = "<section class=\"scenario\" id=\"scenario-\(number)\"><h2>\(e(r.name)) \(badge(r))</h2>\n"
        h += "<p class=\"meta\"><code>\(e(r.file))</code> · started \(e(ISO8601DateFormatter().string(from: r.startedAt))) · \(fmt(r.seconds))"
        if let image = r.image { h += " · \(e(image))\(r.kernelRelease.map { ", kernel \(e($0))" } ?? "")" }
        if let a = r.accelerator { h += " · \(e(a))" }
        h += "</p>\n"
        if let m = r.message { h += "<p class=\"message\">\(e(m))</p>\n" }
        if let q = r.quarantine {
            h += "<p class=\"quarantine\">Quarantine\(q.hasExpired ? " <strong>expired</strong>" : "") until \(e(q.until)): \(e(q.reason))"
                + (q.link.map { " (<a href=\"\(e($0))\">\(e($0))</a>)" } ?? "") + "</p>\n"
        }
        if !r.boots.isEmpty {
            h += "<p class=\"meta\">Boots: " + r.boots.map { "\($0.machine.map { e($0) + ": " } ?? "")\(e($0.cause)) → \(e($0.generation))\($0.kernelRelease.map { " (\(e($0)))" } ?? "") in \(fmt($0.secondsToShell))" }
                .joined(separator: "; ") + "</p>\n"
        }
        if let attempts = r.failedAttempts, !attempts.isEmpty {
            h += "<details class=\"attempts\"><summary>\(attempts.count) earlier failed attempt\(attempts.count == 1 ? "" : "s")</summary><ol>"
            for a in attempts {
                h += "<li>\(e(a.message ?? a.outcome.rawValue))\(a.runDirectory.map { " — " + link($0, "run directory") } ?? "")</li>"
            }
            h += "</ol></details>\n"
        }
        if let c = r.console, !c.isEmpty { h += "<details open><summary>console</summary><pre>\(e(c.joined(separator: "\n")))</pre></details>\n" }
        if !r.steps.isEmpty {
            let id = "steps-\(number)"
            h += HTMLPage.filter(id) + "<table id=\"\(id)\"><tr><th>#</th><th>step</th><th>outcome</th><th>time</th><th>details</th></tr>"
            for (i, s) in r.steps.enumerated() {
                h += "<tr><td>\(i + 1)</td><td>\(e(s.name)) <small>(\(e(s.kind)), line \(s.line))</small></td>"
                    + "<td><span class=\"o \(HTMLPage.cssClass(s.outcome.rawValue))\">\(e(s.outcome.rawValue))</span></td>"
                    + "<td>\(fmt(s.seconds))</td><td>\(details(s))</td></tr>"
            }
            h += "</table>\n"
        }
        if let dir = r.runDirectory {
            h += "<p class=\"meta\">Run directory: " + link(dir, dir) + " · "
                + ["console.log", "channel.log", "domain.xml"].map { link(dir + "/" + $0, $0) }.joined(separator: " · ") + "</p>\n"
        }
        return h + "</section>\n"
    }

    /// A step's message, command, status, output and console excerpt; the
    /// output of a step that did not pass is open, of one that did folded.
    static func details(_ s: StepResult) -> String {
        var d = ""
        if let m = s.message { d += "<div class=\"message\">\(e(m))</div>" }
        if let x = s.expectedFailure { d += "<div>expected to fail: \(e(x))</div>" }
        if let c = s.command, c != s.name { d += "<div><code>\(e(c))</code></div>" }
        if let st = s.exitStatus, st != 0, s.message == nil { d += "<div>exit status \(st)</div>" }
        if let a = s.attempts { d += "<div>\(a) attempt\(a == 1 ? "" : "s")</div>" }
        let open = s.outcome == .passed || s.outcome == .skipped ? "" : " open"
        for (label, text) in [("stdout", s.stdout), ("stderr", s.stderr)] {
            if let text, !text.isEmpty { d += "<details\(open)><summary>\(label)</summary><pre>\(e(text))</pre></details>" }
        }
        if let c = s.console, !c.isEmpty { d += "<details open><summary>console</summary><pre>\(e(c.joined(separator: "\n")))</pre></details>" }
        return d
    }

    /// The scenario's outcome as people read it: flaky and quarantined are named as such.
    static func badge(_ r: ScenarioResult) -> String {
        let label = r.isFlaky ? "flaky" : r.isQuarantined ? "quarantined" : r.outcome == .failed && r.quarantine?.hasExpired == true ? "failed (quarantine expired)" : r.outcome.rawValue
        let cls = r.isFlaky ? "flaky" : r.isQuarantined ? "quarantined" : HTMLPage.cssClass(r.outcome.rawValue)
        return "<span class=\"o \(cls)\">\(e(label))</span>"
    }

    static func counts(_ results: [ScenarioResult]) -> String {
        let parts: [(String, Int)] = [
            ("passed", results.filter { $0.outcome == .passed && !$0.isFlaky }.count),
            ("flaky", results.filter(\.isFlaky).count),
            ("failed", results.filter { $0.outcome == .failed && !$0.isQuarantined }.count),
            ("quarantined", results.filter(\.isQuarantined).count),
            ("infrastructure", results.filter { $0.outcome == .infrastructure }.count),
            ("interrupted", results.filter { $0.outcome == .interrupted }.count),
        ]
        return parts.filter { $0.1 > 0 || $0.0 == "passed" }.map { "\($0.1) \($0.0)" }.joined(separator: ", ")
    }

    static func link(_ path: String, _ text: String) -> String {
        "<a href=\"\(e(URL(fileURLWithPath: path).absoluteString))\">\(e(text))</a>"
    }

    static func fmt(_ s: Double) -> String { String(format: "%.1f s", s) }
    static func e(_ s: String) -> String { HTMLPage.escape(s) }
}
