import Foundation
import Testing
@testable import Rehearsal

/// The TAP report, read by a real TAP consumer: Perl's TAP::Parser.
struct TAPReportTests {
    static func results() -> [ScenarioResult] {
        func step(_ name: String, _ line: Int, _ outcome: Outcome, message: String? = nil) -> StepResult {
            var s = StepResult(name: name, kind: "succeed", line: line, command: name, outcome: outcome, seconds: 0.01)
            s.message = message
            if outcome == .expectedFailure { s.expectedFailure = "bug #12" }
            if outcome == .failed { s.stdout = "line one\nline # two: \"quoted\"\n" }
            return s
        }
        let pass = ScenarioResult(name: "smoke # one", file: "Scenarios/smoke.yaml", outcome: .passed,
                                  steps: [step("uname -r", 5, .passed), step("flaky thing", 6, .expectedFailure, message: "exit status 1")],
                                  seconds: 3, startedAt: Date())
        let fail = ScenarioResult(name: "upgrade", file: "Scenarios/upgrade.yaml", outcome: .failed, message: "step 2 failed",
                                  steps: [step("apt-get install", 7, .passed), step("systemctl is-active demo", 9, .failed, message: "exit status 3"),
                                          step("curl localhost", 11, .skipped)],
                                  seconds: 9, startedAt: Date())
        var boot = ScenarioResult(name: "never booted", file: "Scenarios/b.yaml", outcome: .infrastructure, message: "boot: QEMU failed",
                                  steps: [step("true", 4, .skipped)], seconds: 1, startedAt: Date())
        boot.console = ["qemu: could not load kernel"]
        return [pass, fail, boot]
    }

    /// What TAP::Parser makes of `tap` (subtests are parsed on their own,
    /// de-indented, as a TAP consumer that knows subtests does).
    static func parse(_ tap: String) throws -> [String: String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rehearse-tap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("run.tap")
        try tap.write(to: file, atomically: true, encoding: .utf8)
        let script = #"""
        use TAP::Parser;
        sub summary { my ($p, $name) = @_; $p->run;
          my @pass = $p->passed; my @fail = $p->failed; my @skip = $p->skipped; my @todo = $p->todo;
          my @errors = grep { !/version 14/ } $p->parse_errors;
          printf "%s=planned:%d run:%d passed:%d failed:%d skipped:%d todo:%d goodplan:%d errors:%s\n",
            $name, $p->tests_planned, $p->tests_run, scalar(@pass), scalar(@fail), scalar(@skip), scalar(@todo),
            $p->is_good_plan, join("|", @errors); }
        open(my $fh, "<", $ARGV[0]) or die; my @lines = <$fh>; close $fh;
        my $top = TAP::Parser->new({ tap => join("", grep { !/^    / } @lines) });
        my @yaml; while (my $r = $top->next) { push @yaml, $r->data if $r->is_yaml; }
        summary($top, "top"); print "topyaml=" . scalar(@yaml) . "\n";
        my ($n, @sub) = (0);
        for my $l (@lines, "# Subtest: end\n") {
          if ($l =~ /^# Subtest: /) { if (@sub) { $n++; summary(TAP::Parser->new({ tap => join("", @sub) }), "sub$n"); } @sub = (); next; }
          push @sub, substr($l, 4) if $l =~ /^    /;
        }
        """#
        let out = try HostCommand.run(["perl", "-e", script, file.path])
        var fields: [String: String] = [:]
        for line in out.split(separator: "\n") {
            let kv = line.split(separator: "=", maxSplits: 1)
            if kv.count == 2 { fields[String(kv[0])] = String(kv[1]) }
        }
        return fields
    }

    @Test func aTAPConsumerReadsTheScenariosAndTheirSteps() throws {
        let tap = ReportWriter.tap(Self.results())
        #expect(tap.hasPrefix("TAP version 14\n1..3\n# Subtest: smoke \\# one\n    1..2\n"))
        let f = try Self.parse(tap)
        #expect(f["top"] == "planned:3 run:3 passed:1 failed:2 skipped:0 todo:0 goodplan:1 errors:", "\(f)\n\(tap)")
        #expect(f["topyaml"] == "2", "each failed scenario carries its message")
        #expect(f["sub1"] == "planned:2 run:2 passed:2 failed:0 skipped:0 todo:1 goodplan:1 errors:", "a TODO failure passes: \(f)")
        #expect(f["sub2"] == "planned:3 run:3 passed:2 failed:1 skipped:1 todo:0 goodplan:1 errors:", "\(f)")
        #expect(f["sub3"] == "planned:1 run:1 passed:0 failed:1 skipped:0 todo:0 goodplan:1 errors:", "the boot is the one test point: \(f)")
    }

    @Test func aFailedStepCarriesItsPlaceMessageAndOutputAsYAML() {
        let tap = ReportWriter.tap(Self.results())
        #expect(tap.contains("""
                not ok 2 - systemctl is-active demo
                  ---
                  message: "exit status 3"
                  severity: failed
                  at: "Scenarios/upgrade.yaml:9"
                  output: "command: systemctl is-active demo\\nstdout:\\nline one\\nline # two: \\"quoted\\"\\n"
                  ...
            """), "\(tap)")
        #expect(tap.contains("    ok 3 - curl localhost # SKIP an earlier step failed\n"))
        #expect(tap.contains("    not ok 2 - flaky thing # TODO expected failure: bug \\#12\n"))
    }
}
