import Foundation
import Testing
@testable import Rehearsal

/// `rehearse gate` as a user runs it, on the tiny guest: COMMAND runs only
/// after every scenario passed, exactly as given, and every decision is kept.
@Suite(.serialized) struct GateTests {
    static func scenario(_ steps: String) throws -> String {
        let dir = TestGuest.runs.appendingPathComponent("gate")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let f = dir.appendingPathComponent("gate-\(UUID().uuidString.prefix(8)).yaml")
        try "machine: {generation: tiny}\nsteps:\n\(steps)".write(to: f, atomically: true, encoding: .utf8)
        return f.path
    }

    /// A command that writes its arguments, one per line, into `marker`.
    static func command(_ marker: URL) -> [String] {
        ["/bin/sh", "-c", "printf '%s\\n' \"$@\" > \"$0\"", marker.path, "a b", "it's \"quoted\"", "$(touch \(marker.path).pwned)", "`id`"]
    }

    static func history(_ marker: URL) -> [GateRecord] {
        GateHistory(state: TestGuest.state).records().filter { $0.command.contains(marker.path) }
    }

    @Test func aPassingGateRunsTheCommandWithItsArgumentsUnchanged() async throws {
        let marker = TestGuest.runs.appendingPathComponent("gate-\(UUID().uuidString.prefix(8)).out")
        let passing = try Self.scenario("  - succeed: \"true\"\n")
        let run = try CommandLineTests.start(["gate", "--candidate", "tiny", "--scenario", passing, "--"] + Self.command(marker))
        #expect(await run.wait() == 0, "\(run.err)")
        let written = try String(contentsOf: marker, encoding: .utf8)
        #expect(written == "a b\nit's \"quoted\"\n$(touch \(marker.path).pwned)\n`id`\n")
        #expect(!FileManager.default.fileExists(atPath: marker.path + ".pwned"), "no shell ever saw the arguments")
        let h = Self.history(marker)
        #expect(h.count == 1 && h[0].decision == .ran && h[0].commandStatus == 0 && h[0].candidateDigest?.count == 64)
        #expect(h.first?.scenarios.map(\.outcome) == [.passed])
    }

    @Test func aFailingGateRefusesAndADryRunNeverRuns() async throws {
        let marker = TestGuest.runs.appendingPathComponent("gate-\(UUID().uuidString.prefix(8)).out")
        let passing = try Self.scenario("  - succeed: \"true\"\n")
        let failing = try Self.scenario("  - succeed: \"false\"\n")
        let refused = try CommandLineTests.start(["gate", "--candidate", "tiny", "--scenario", passing, "--scenario", failing, "--"] + Self.command(marker))
        #expect(await refused.wait() == 1, "\(refused.err)")
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        let dry = try CommandLineTests.start(["gate", "--dry-run", "--candidate", "tiny", "--scenario", passing, "--"] + Self.command(marker))
        #expect(await dry.wait() == 0, "\(dry.err)")
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        let h = Self.history(marker)
        #expect(h.map(\.decision) == [.refused, .wouldRun])
        #expect(h.first?.scenarios.map(\.outcome) == [.passed, .failed])
        #expect(h.allSatisfy { $0.commandStatus == nil })
        let table = try CommandLineTests.start(["gate", "--history"])
        #expect(await table.wait(60) == 0)
        #expect(table.out.contains("refused") && table.out.contains("would-run") && table.out.contains("'a b'"), "\(table.out)")
    }

    @Test func theCommandsOwnStatusIsTheGatesStatus() async throws {
        let passing = try Self.scenario("  - succeed: \"true\"\n")
        let run = try CommandLineTests.start(["gate", "--candidate", "tiny", "--scenario", passing, "--", "/bin/sh", "-c", "exit 7"])
        #expect(await run.wait() == 7, "\(run.err)")
        let usage = try CommandLineTests.start(["gate", "--candidate", "tiny", "--scenario", passing])
        #expect(await usage.wait(60) == 2, "no command after --")
    }
}
