import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse compare OLD NEW`: boot two generations side by side and show what changed.
struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Boot two generations side by side and report what changed between them.",
        discussion: """
        Both generations boot at the same time, each in its own machine. Built-in probes record \
        the OS release and kernel, installed packages (dpkg, rpm, the Nix closure), systemd units, \
        listening ports, /etc file hashes, boot timing and root disk usage; with --scenario, its \
        steps run on both. A step that passes on OLD and fails on NEW, and a unit that fails only \
        on NEW, are regressions. A scenario with several machines boots whole on both sides, with \
        the same roles: OLD and NEW replace the system of every machine, or only of those --machine \
        names, and the first of those is probed and timed. Exit status: 0 no regressions, 1 regressions, 2 bad usage, \
        3 infrastructure failure.
        """
    )

    @Argument(help: "The old generation (a name from `rehearse generations`, a recipe, a disk image or a NixOS system such as /run/current-system).") var old: String
    @Argument(help: "The new generation (as OLD; for example ./result).") var new: String
    @Option(help: "A scenario whose steps run on both (its machine settings and payload are used).") var scenario: String?
    @Option(help: "Boots per generation for the boot-time comparison (min and median are shown).") var boots: Int = 1
    @Flag(help: "Boot the generations one after the other instead of at the same time.") var sequential = false
    @Option(name: .customLong("machine"), help: "In a --scenario with several machines, one that OLD and NEW replace (repeat for more; default: every machine; the first is probed).") var machines: [String] = []
    @Option(help: "Write the full comparison as JSON.") var json: String?
    @Option(help: "Write a self-contained HTML report.") var html: String?
    @OptionGroup var connection: ConnectionOptions

    func validate() throws {
        guard (1...20).contains(boots) else { throw ValidationError("--boots must be between 1 and 20") }
        guard machines.isEmpty || scenario != nil else { throw ValidationError("--machine names machines of a --scenario; give one") }
    }

    func run() async throws {
        let terminal = Terminal()
        let reporter = TerminalReporter(terminal: terminal, parallel: !sequential)
        let paths = ImageRecipe.searchPaths(scenarioFile: scenario)
        let prepared = try scenario.map { try Runner.prepare(files: [$0])[0] }
        _ = try prepared?.scenario.machinesNamed(machines)
        let refs = try [old, new].map { try Candidate.named($0, searchPaths: paths) }
        let runner = Runner(options: .init(uri: connection.connect, accelerator: connection.accel, cold: connection.cold), observer: reporter)
        Interruption.shared.install()
        terminal.line("comparing \(old) and \(new): booting both" + (sequential ? ", one after the other" : " at once") + (boots > 1 ? ", \(boots) times each" : ""))
        let comparison: Comparison
        do {
            comparison = try await CompareRunner(runner: runner).compare(.init(old: refs[0], new: refs[1], scenario: prepared, boots: boots, sequential: sequential, machines: machines))
        } catch {
            terminal.finishLine()
            throw error
        }
        terminal.finishLine()
        for line in CompareSummary.lines(comparison, width: 100) { terminal.line(line) }
        do {
            if let json {
                try JSONCoding.encoder.encode(comparison).write(to: URL(fileURLWithPath: json))
            }
            if let html {
                try CompareReport.html(comparison).write(toFile: html, atomically: true, encoding: .utf8)
                terminal.line("HTML report: \(html)")
            }
        } catch {
            throw RehearsalError.infrastructure("writing the report failed: \(error)")
        }
        throw ExitCode(comparison.regressions.isEmpty ? 0 : 1)
    }
}

/// The terminal's side-by-side summary: regressions first, then counts per section.
enum CompareSummary {
    static func lines(_ c: Comparison, width: Int) -> [String] {
        var out: [String] = []
        let half = (width - 3) / 2
        func cell(_ s: String) -> String {
            s.count > half ? String(s.prefix(half - 1)) + "…" : s.padding(toLength: half, withPad: " ", startingAt: 0)
        }
        func row(_ a: String, _ b: String) { out.append((cell(a) + " │ " + b.prefix(half)).trimmingCharacters(in: .whitespaces)) }
        out.append(String(repeating: "─", count: width))
        row("OLD \(c.old.generation.name) \(c.old.generation.shortDigest)", "NEW \(c.new.generation.name) \(c.new.generation.shortDigest)")
        row(c.old.generation.version, c.new.generation.version)
        if let o = c.old.machine, let n = c.new.machine { row("probed on machine \(o)", "probed on machine \(n)") }
        row("kernel \(c.old.snapshot.kernel ?? "?")", "kernel \(c.new.snapshot.kernel ?? "?")")
        func t(_ s: Double) -> String { String(format: "%.1f s", s) }
        let b = c.bootTime
        row("boot \(t(b.oldMedian)) (min \(t(b.oldMin)), \(c.old.bootSeconds.count) boots)", "boot \(t(b.newMedian)) (min \(t(b.newMin)), \(c.new.bootSeconds.count) boots)")
        out.append(String(repeating: "─", count: width))
        let regressions = c.regressions
        if regressions.isEmpty {
            out.append(c.hasDifferences ? "no regressions" : "no regressions, and no differences")
        } else {
            out.append("REGRESSIONS (\(regressions.count))")
            for r in regressions { out.append("  ✗ " + String(r.prefix(width - 4))) }
        }
        let kinds = { (k: Comparison.PackageKind) in c.packages.filter { $0.kind == k }.count }
        out.append("packages:   \(kinds(.upgraded)) upgraded, \(kinds(.downgraded)) downgraded, \(kinds(.added)) added, \(kinds(.removed)) removed")
        for p in c.packages.prefix(8) {
            out.append("  \(p.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) \(p.name) \(p.old ?? "-") → \(p.new ?? "-")")
        }
        if c.packages.count > 8 { out.append("  … \(c.packages.count - 8) more (see --json or --html)") }
        out.append("units:      " + (c.units.isEmpty ? "no changes" : c.units.map { "\($0.name) \($0.kind.rawValue)" }.prefix(4).joined(separator: "; ")))
        out.append("ports:      \(c.portsOpened.count) opened, \(c.portsClosed.count) closed"
                   + (c.portsOpened.isEmpty ? "" : ": +" + c.portsOpened.joined(separator: ", +")))
        out.append("/etc:       \(c.etc.filter { $0.kind == .added }.count) added, \(c.etc.filter { $0.kind == .removed }.count) removed, \(c.etc.filter { $0.kind == .changed }.count) changed")
        let a = c.assertions
        if !a.isEmpty {
            out.append("steps:      \(a.filter { $0.kind == .passes }.count) pass on both, \(a.filter { $0.kind == .regression }.count) regressions, \(a.filter { $0.kind == .alreadyBroken }.count) already broken, \(a.filter { $0.kind == .fix }.count) fixed")
        }
        out.append(String(format: "boot time:  %+.1f s (median; noise band ±%.1f s)", b.change, b.noise))
        if let d = c.rootUsedChange { out.append(String(format: "root disk:  %+.1f MiB used", Double(d) / 1048576)) }
        out.append("normalised: machine-id, random seeds, PIDs, boot-time units, timestamps (details in --json/--html)")
        for s in c.notes where s.hasPrefix("old:") || s.hasPrefix("new:") { out.append("  " + String(s.prefix(width - 2))) }
        out.append(String(format: "compared in %.1f s; probes took %.1f s (old) and %.1f s (new)", c.seconds, c.old.snapshot.probeSeconds, c.new.snapshot.probeSeconds))
        return out.map { String($0.prefix(width)) }
    }
}
