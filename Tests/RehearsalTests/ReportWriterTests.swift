import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import Rehearsal

@Suite struct ReportWriterTests {
    static func sample() -> [ScenarioResult] {
        let pass = StepResult(name: "succeed: uname", kind: "succeed", line: 5, command: "uname", outcome: .passed,
                              seconds: 0.01, stdout: "6.1.0\n", stderr: "", exitStatus: 0)
        var fail = pass
        fail.name = "run: cat <file> & \"more\""
        fail.outcome = .failed
        fail.message = "stdout does not contain \"ID=\""
        fail.stdout = "binary \u{01}\u{1b} junk"
        fail.console = ["[ 1.0] Kernel panic - not syncing"]
        var skipped = pass
        skipped.outcome = .skipped
        let ok = ScenarioResult(name: "ok", file: "a.yaml", outcome: .passed, steps: [pass], seconds: 3, startedAt: Date())
        let bad = ScenarioResult(name: "bad", file: "b.yaml", outcome: .failed, message: "step 2", steps: [pass, fail, skipped], seconds: 4, startedAt: Date())
        var boot = ScenarioResult(name: "noboot", file: "c.yaml", outcome: .infrastructure, message: "boot: QEMU failed", steps: [skipped], seconds: 1, startedAt: Date())
        boot.console = ["last line"]
        return [ok, bad, boot]
    }

    @Test func junitIsWellFormedWithOneTestcasePerStep() throws {
        let xml = ReportWriter.junit(Self.sample())
        let doc = try XMLDocument(xmlString: xml, options: [])
        let cases = try doc.nodes(forXPath: "//testcase")
        #expect(cases.count == 1 + 3 + 2)
        #expect(try doc.nodes(forXPath: "//testcase/failure").count == 1)
        #expect(try doc.nodes(forXPath: "//testcase/error").count == 1)
        #expect(try doc.nodes(forXPath: "//testcase/skipped").count == 2)
        let failure = try doc.nodes(forXPath: "//failure").first as? XMLElement
        #expect(failure?.attribute(forName: "message")?.stringValue == "stdout does not contain \"ID=\"")
        #expect(failure?.stringValue?.contains("Kernel panic") == true)
        let root = doc.rootElement()
        #expect(root?.attribute(forName: "tests")?.stringValue == "6")
    }

    @Test func jsonRoundTrips() throws {
        let data = try ReportWriter.json(Self.sample())
        let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let scenarios = obj?["scenarios"] as? [[String: Any]]
        #expect(scenarios?.count == 3)
        #expect(scenarios?[1]["outcome"] as? String == "failed")
        #expect((scenarios?[1]["steps"] as? [[String: Any]])?.count == 3)
    }

    @Test func exitStatusFollowsTheOutcome() {
        let r = Self.sample()
        #expect(r.map { $0.exitStatus() } == [0, 1, 3])
    }
}
