import Foundation
import Testing
@testable import Rehearsal

/// The quarantine file and what it does to a run's verdict and reports.
struct QuarantineTests {
    static let file = """
    - scenario: "upgrade-*"
      step: "wait_for_unit: nginx*"
      reason: nginx races its PID file
      link: https://bugs.example.org/1
      until: 2030-06-30
    - scenario: smoke
      reason: the old kernel
      until: 2020-01-01
    """

    static func failed(_ name: String, step: String) -> ScenarioResult {
        let s = StepResult(name: step, kind: "succeed", line: 3, command: nil, outcome: .failed, seconds: 1, message: "exit status 1")
        return ScenarioResult(name: name, file: "s.yaml", outcome: .failed, message: "step 1 failed", steps: [s], seconds: 1, startedAt: Date())
    }

    static let day = Quarantine.day("2026-12-03")!

    @Test func aCoveredFailureDoesNotFailTheRunAndAnExpiredOneDoes() throws {
        let q = try Quarantine.parse(text: Self.file, file: "q.yaml")
        let results = q.apply(to: [Self.failed("upgrade-app", step: "wait_for_unit: nginx.service"),
                                   Self.failed("upgrade-app", step: "succeed: true"),
                                   Self.failed("smoke", step: "x")], today: Self.day)
        #expect(results[0].isQuarantined && results[0].exitStatus() == 0)
        #expect(results[1].quarantine == nil && results[1].exitStatus() == 1, "the entry names another step")
        #expect(results[2].quarantine?.hasExpired == true && !results[2].isQuarantined && results[2].exitStatus() == 1)
        #expect(results[2].message == "quarantine expired on 2020-01-01: step 1 failed")
        #expect(ScenarioResult.exitStatus(of: [results[0]]) == 0 && ScenarioResult.exitStatus(of: results) == 1)
        // The last day covered is covered all day.
        let lastDay = Quarantine(entries: q.entries).apply(to: [Self.failed("upgrade-x", step: "wait_for_unit: nginx")],
                                                             today: Quarantine.day("2030-06-30")!.addingTimeInterval(86_000))
        #expect(lastDay[0].isQuarantined)
    }

    @Test func reportsShowAQuarantinedFailureAsSuchNotAsAFailure() throws {
        let q = try Quarantine.parse(text: Self.file, file: "q.yaml")
        let r = q.apply(to: [Self.failed("upgrade-app", step: "wait_for_unit: nginx.service")], today: Self.day)
        let junit = ReportWriter.junit(r)
        #expect(junit.contains("failures=\"0\"") && junit.contains("<skipped type=\"quarantined\" message=\"quarantined until 2030-06-30: nginx races its PID file (https://bugs.example.org/1); exit status 1\""), "\(junit)")
        let tap = ReportWriter.tap(r)
        #expect(tap.contains("    not ok 1 - wait_for_unit: nginx.service # TODO quarantined until 2030-06-30: nginx races its PID file (https://bugs.example.org/1)\n"), "\(tap)")
        #expect(tap.contains("\nnot ok 1 - upgrade-app # TODO quarantined until 2030-06-30"), "\(tap)")
    }

    @Test(arguments: [
        ("- scenario: x\n  until: 2030-01-01\n", "q.yaml:1: a quarantine entry needs `reason`"),
        ("- scenario: x\n  reason: y\n  until: 30/01/2030\n", "q.yaml:3: `until` is a date, YYYY-MM-DD (got 30/01/2030)"),
        ("- scenario: x\n  reason: y\n  until: 2030-01-01\n  owner: me\n", "q.yaml:4: unknown key `owner` in a quarantine entry (allowed: link, reason, scenario, step, until)"),
        ("scenario: x\n", "q.yaml:1: a quarantine file is a list of entries with scenario, reason and until"),
    ])
    func aBadFileIsRefusedWithItsLine(text: String, message: String) {
        let e = #expect(throws: RehearsalError.self) { try Quarantine.parse(text: text, file: "q.yaml") }
        #expect(e?.description == message && e?.exitStatus == 2, "\(String(describing: e))")
    }

    @Test func aFlakyPassFailsTheRunUnlessAllowedAndCarriesItsAttempts() {
        var r = ScenarioResult(name: "s", file: "s.yaml", outcome: .passed,
                               steps: [StepResult(name: "check", kind: "succeed", line: 3, command: nil, outcome: .passed, seconds: 1)],
                               seconds: 1, startedAt: Date())
        r.failedAttempts = [Self.failed("s", step: "check")]
        #expect(r.isFlaky && r.exitStatus() == 1 && r.exitStatus(allowFlaky: true) == 0)
        let junit = ReportWriter.junit([r])
        #expect(junit.contains("<testcase classname=\"s\" name=\"check\"") && junit.contains("<flakyFailure type=\"failed\" message=\"attempt 1: step 1 failed\""), "\(junit)")
        #expect(ReportWriter.tap([r]).contains("\nok 1 - s\n  ---\n  flaky: \"passed on attempt 2\"\n  failed attempts: \"attempt 1: step 1 failed\"\n  ...\n"))
    }
}
