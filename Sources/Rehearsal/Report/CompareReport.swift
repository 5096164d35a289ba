import Foundation

/// The HTML page of a comparison: one self-contained file (no external
/// assets) that reads fully with JavaScript off; with it on, the tables get
/// a filter box. Every string from a guest is escaped.
public enum CompareReport {
    static let style = """
        .ids{display:grid;grid-template-columns:1fr 1fr;gap:1em;margin-bottom:1em}.id{border:1px solid #ddd;padding:.6em;border-radius:6px}
        .regressions{border:2px solid #c62828;background:#fdecea;padding:.6em 1em;border-radius:6px}
        .ok{border:2px solid #2e7d32;background:#edf7ed;padding:.6em 1em;border-radius:6px}
        .regression,.newly-failing,.removed,.downgraded,.closed{color:#b71c1c}.fix,.upgraded,.added,.opened,.newly-active{color:#1b5e20}
        .already-broken{color:#8d6e00}.bar{display:inline-block;height:14px;vertical-align:middle}
        .k{background:#5c6bc0}.i{background:#26a69a}.u{background:#ffa726}.f{background:#8d6e63}.l{background:#ab47bc}.h{background:#9e9e9e}
        """

    public static func html(_ c: Comparison) -> String {
        var h = """
        <h1>rehearse compare</h1>
        <div class="ids">\(identity("OLD", c.old))\(identity("NEW", c.new))</div>

        """
        let regressions = c.regressions
        if regressions.isEmpty {
            h += "<p class=\"ok\" id=\"verdict\">No regressions.</p>\n"
        } else {
            h += "<div class=\"regressions\" id=\"regressions\"><strong>\(regressions.count) regression\(regressions.count == 1 ? "" : "s")</strong><ul>"
            for r in regressions { h += "<li class=\"regression\">\(e(r))</li>" }
            h += "</ul></div>\n"
        }

        if !c.assertions.isEmpty {
            h += "<h2>Assertions</h2>\n<table id=\"assertions\"><tr><th>step</th><th>OLD</th><th>NEW</th><th>verdict</th></tr>"
            for (i, a) in c.assertions.enumerated() {
                let o = i < c.old.steps.count ? c.old.steps[i] : nil, n = i < c.new.steps.count ? c.new.steps[i] : nil
                h += "<tr class=\"\(cls(a.kind.rawValue))\"><td>\(e(a.step)) <small>(line \(a.line))</small></td>"
                h += "<td>\(stepCell(o))</td><td>\(stepCell(n))</td><td>\(e(a.kind.rawValue))</td></tr>"
            }
            h += "</table>\n"
        }

        h += "<h2>Packages</h2>\n" + table(id: "packages", ["change", "manager", "package", "OLD", "NEW"],
            c.packages.map { [$0.kind.rawValue, $0.manager, $0.name, $0.old ?? "–", $0.new ?? "–"] }, classColumn: 0)
        h += "<h2>Units</h2>\n" + table(id: "units", ["change", "unit", "OLD", "NEW"],
            c.units.map { [$0.kind.rawValue, $0.name, unit($0.old), unit($0.new)] }, classColumn: 0)
        h += "<h2>Listening ports</h2>\n" + table(id: "ports", ["change", "socket"],
            c.portsOpened.map { ["opened", $0] } + c.portsClosed.map { ["closed", $0] }, classColumn: 0)
        h += "<h2>/etc</h2>\n" + table(id: "etc", ["change", "file"], c.etc.map { [$0.kind.rawValue, $0.path] }, classColumn: 0)

        h += "<h2>Boot time</h2>\n" + bootChart(c)
        h += "<h2>System</h2>\n<table><tr><th></th><th>OLD</th><th>NEW</th></tr>"
        h += "<tr><td>OS</td><td>\(e(c.old.snapshot.osRelease["PRETTY_NAME"] ?? "?"))</td><td>\(e(c.new.snapshot.osRelease["PRETTY_NAME"] ?? "?"))</td></tr>"
        h += "<tr><td>kernel</td><td>\(e(c.old.snapshot.kernel ?? "?"))</td><td>\(e(c.new.snapshot.kernel ?? "?"))</td></tr>"
        h += "<tr><td>root disk used</td><td>\(mib(c.old.snapshot.rootUsedBytes))</td><td>\(mib(c.new.snapshot.rootUsedBytes))</td></tr></table>\n"
        h += "<h2>Normalised and skipped</h2>\n<ul>" + c.notes.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"

        h += "<h2>Console logs</h2>\n"
        for (label, side) in [("OLD", c.old), ("NEW", c.new)] {
            let log = (side.machineDirectory ?? side.runDirectory).flatMap { try? String(contentsOfFile: $0 + "/console.log", encoding: .utf8) } ?? "(no console log)"
            h += "<details><summary>\(label) \(e(side.generation.name)) console</summary><pre>\(e(log))</pre></details>\n"
        }
        return HTMLPage.document(title: "rehearse compare: \(c.old.generation.name) → \(c.new.generation.name)", style: style, body: h)
    }


    static func identity(_ label: String, _ s: Comparison.Side) -> String {
        let g = s.generation
        return "<div class=\"id\"><strong>\(label)</strong> <code>\(e(g.name))</code> \(e(g.version))<br>"
            + "digest <code>\(e(g.shortDigest))</code> · \(e(g.boot.rawValue)) boot · parent \(e(g.parent ?? "–"))<br>"
            + "kernel \(e(s.snapshot.kernel ?? "?"))"
            + (s.machine.map { "<br>probed on machine <code>\(e($0))</code> of the scenario" } ?? "") + "</div>"
    }

    static func stepCell(_ s: StepResult?) -> String {
        guard let s else { return "–" }
        return "<span class=\"\(cls(s.outcome == .passed ? "fix" : "regression"))\">\(e(s.outcome.rawValue))</span>"
            + (s.message.map { "<br><small>\(e($0))</small>" } ?? "")
    }

    static func table(id: String, _ head: [String], _ rows: [[String]], classColumn: Int) -> String {
        guard !rows.isEmpty else { return "<p id=\"\(id)\">No changes.</p>\n" }
        var t = HTMLPage.filter(id)
        t += "<table id=\"\(id)\"><tr>" + head.map { "<th>\(e($0))</th>" }.joined() + "</tr>"
        for r in rows { t += "<tr class=\"\(cls(r[classColumn]))\">" + r.map { "<td>\(e($0))</td>" }.joined() + "</tr>" }
        return t + "</table>\n"
    }

    /// Boot phases of both generations as bars on one scale: systemd's own
    /// phases where it reports them, and the harness's power-on-to-shell time.
    static func bootChart(_ c: Comparison) -> String {
        let b = c.bootTime
        let phases: [(String, String)] = [("firmware", "f"), ("loader", "l"), ("kernel", "k"), ("initrd", "i"), ("userspace", "u")]
        let scale = max(b.oldMedian, b.newMedian, 1)
        func bars(_ p: [String: Double], _ total: Double) -> String {
            var s = ""
            for (name, k) in phases { if let v = p[name] { s += "<span class=\"bar \(k)\" style=\"width:\(pct(v, scale))%\" title=\"\(name) \(fmt(v))\"></span>" } }
            let rest = total - p.values.reduce(0, +)
            if rest > 0 { s += "<span class=\"bar h\" style=\"width:\(pct(rest, scale))%\" title=\"until the shell answered \(fmt(rest))\"></span>" }
            return s
        }
        var t = "<table id=\"boot\"><tr><th></th><th>median</th><th>min</th><th style=\"width:60%\">phases (on one scale)</th></tr>"
        t += "<tr><td>OLD</td><td>\(fmt(b.oldMedian))</td><td>\(fmt(b.oldMin))</td><td>\(bars(b.oldPhases, b.oldMedian))</td></tr>"
        t += "<tr><td>NEW</td><td>\(fmt(b.newMedian))</td><td>\(fmt(b.newMin))</td><td>\(bars(b.newPhases, b.newMedian))</td></tr></table>"
        t += "<p>Change of the median: \(String(format: "%+.1f s", b.change)) (noise band ±\(fmt(b.noise)), "
            + "\(c.old.bootSeconds.count) and \(c.new.bootSeconds.count) boots). Legend: "
            + phases.map { "<span class=\"bar \($0.1)\" style=\"width:1em\"></span> \($0.0)" }.joined(separator: " ")
            + " <span class=\"bar h\" style=\"width:1em\"></span> until the harness's shell answered</p>\n"
        return t
    }

    static func unit(_ u: UnitState?) -> String { u.map { "\($0.active)\($0.enabled.map { ", \($0)" } ?? "")" } ?? "–" }
    static func mib(_ b: Int64?) -> String { b.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "?" }
    static func fmt(_ s: Double) -> String { String(format: "%.1f s", s) }
    static func pct(_ v: Double, _ scale: Double) -> String { String(format: "%.1f", max(0, v / scale * 100)) }
    static func cls(_ s: String) -> String { HTMLPage.cssClass(s) }
    static func e(_ s: String) -> String { HTMLPage.escape(s) }
}
