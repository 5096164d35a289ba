import Foundation
import Testing
@testable import Rehearsal

/// `--retries`, flaky scenarios and the quarantine, with real guests.
@Suite(.serialized) struct RetryTests {
    /// The guest sees the host's store live (9p), so a marker there decides:
    /// the first attempt finds it and fails; the retry hook removes it.
    @Test func aScenarioThatFailsOnceThenPassesIsFlakyNeverAPlainPass() async throws {
        let fixture = try await CandidateFormTests.nixosFixture()
        let marker = fixture.appendingPathComponent("nix/store/rehearse-flaky-marker")
        try "fail once\n".write(to: marker, atomically: true, encoding: .utf8)
        let name = "flaky-\(UUID().uuidString.prefix(6))"
        TestGuest.observer.onRetry(of: name) { _ in try? FileManager.default.removeItem(at: marker) }
        let p = try TestGuest.scenario("""
        name: \(name)
        machine: {nixos: \(fixture.appendingPathComponent("result").path), memory: 384}
        timeout: 120
        steps:
          - succeed: "true"
          - name: the marker on the host is gone
            succeed: test ! -e /nix/store/rehearse-flaky-marker
        """, name: name)
        let r = await TestGuest.runner.run(p, retries: 2)
        #expect(r.outcome == .passed && r.isFlaky, "\(r.outcome) \(r.message ?? "")")
        let first = try #require(r.failedAttempts?.first)
        #expect(r.failedAttempts?.count == 1 && first.steps[1].outcome == .failed && first.runDirectory != r.runDirectory)
        // The run fails unless flaky passes are allowed.
        #expect(ScenarioResult.exitStatus(of: [r]) == 1 && ScenarioResult.exitStatus(of: [r], allowFlaky: true) == 0)
        let junit = ReportWriter.junit([r])
        #expect(junit.contains("name=\"the marker on the host is gone\"") && junit.contains("<flakyFailure type=\"failed\" message=\"attempt 1: step 2"), "\(junit)")
        #expect(!junit.contains("<failure"))
    }

    @Test func aQuarantinedFailurePassesTheRunUntilItsDate() async throws {
        let s = try TestGuest.scenario("name: known-bad\nmachine: {image: tiny}\nsteps:\n  - name: the known bug\n    succeed: \"false\"\n", name: "known-bad")
        let dir = TestGuest.runs.appendingPathComponent("quarantine-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        func quarantine(until: String) throws -> String {
            let f = dir.appendingPathComponent("q-\(until).yaml")
            try """
            - scenario: "known-*"
              step: "the known*"
              reason: the demo bug
              link: https://bugs.example.org/1
              until: \(until)
            """.write(to: f, atomically: true, encoding: .utf8)
            return f.path
        }
        let junit = dir.appendingPathComponent("junit.xml"), tap = dir.appendingPathComponent("run.tap")
        let covered = try CommandLineTests.start(["run", s.scenario.file, "--quarantine", try quarantine(until: "2999-12-31"), "--retries", "1",
                                                   "--junit", junit.path, "--tap", tap.path, "--run-dir", dir.path])
        #expect(await covered.wait() == 0, "\(covered.out)\n\(covered.err)")
        #expect(covered.out.contains("QUARANTINED") && covered.out.contains("the demo bug (https://bugs.example.org/1), until 2999-12-31"), "\(covered.out)")
        #expect(covered.out.contains("attempt 2 of 2 on a fresh machine"), "a failure is retried before it counts: \(covered.out)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("<skipped type=\"quarantined\"") && xml.contains("<rerunFailure") && xml.contains("failures=\"0\""), "\(xml)")
        #expect(try String(contentsOf: tap, encoding: .utf8).contains("not ok 1 - the known bug # TODO quarantined until 2999-12-31"))
        let expired = try CommandLineTests.start(["run", s.scenario.file, "--quarantine", try quarantine(until: "2001-01-01"), "--run-dir", dir.path])
        #expect(await expired.wait() == 1, "\(expired.out)\n\(expired.err)")
        #expect(expired.out.contains("quarantine expired on 2001-01-01"), "\(expired.out)")
        // A bad quarantine file is refused before anything boots, naming its line.
        let bad = dir.appendingPathComponent("bad.yaml")
        try "- scenario: x\n  reason: y\n  until: soon\n".write(to: bad, atomically: true, encoding: .utf8)
        let refused = try CommandLineTests.start(["run", s.scenario.file, "--quarantine", bad.path])
        #expect(await refused.wait(60) == 2)
        #expect(refused.err.contains("\(bad.path):3: `until` is a date, YYYY-MM-DD (got soon)"), "\(refused.err)")
    }
}
