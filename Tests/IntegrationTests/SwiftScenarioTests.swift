import Foundation
import Synchronization
import Testing
@testable import Rehearsal

/// Scenarios written in Swift (`Runner.run(_:…)` and `ScenarioProgram`),
/// on real guests: the same verdicts, reports and cleanup as YAML.
@Suite(.serialized) struct SwiftScenarioTests {
    static let tiny = MachineDeclaration(.generation("tiny"))

    @Test func aPassingScenarioRecordsEveryCallAsAStep() async throws {
        _ = TestGuest.state
        let line = #line
        let r = await TestGuest.runner.run("swift-pass") { s in
            let m = try await s.machine(Self.tiny)
            try await m.succeed("true")
            let out = try await m.run("echo out; echo err >&2; exit 3", expect: .exit(3))
            #expect(out.stdoutText == "out\n" && out.stderrText == "err\n" && out.status == 3)
            // Plain Swift between steps decides what runs next.
            let kernel = try await m.succeed("uname -r").trimmingCharacters(in: .whitespacesAndNewlines)
            try await m.assertBooted(generation: "tiny", kernel: NSRegularExpression.escapedPattern(for: kernel))
            try await m.waitUntilSucceeds("test -e /proc/self", name: "proc is there")
        }
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect(r.steps.map(\.name) == ["true", "echo out; echo err >&2; exit 3", "uname -r", "booted", "proc is there"])
        #expect(r.steps.map(\.line) == [line + 3, line + 4, line + 7, line + 8, line + 9])
        #expect(r.file == #filePath && r.image == "tiny" && r.imageDigest?.count == 64)
        let dir = try #require(r.runDirectory)
        #expect(FileManager.default.fileExists(atPath: dir + "/console.log") && FileManager.default.fileExists(atPath: dir + "/result.json"))
        let junit = ReportWriter.junit([r])
        #expect(junit.components(separatedBy: "<testcase ").count - 1 == 5)
    }

    @Test func aFailingStepEndsTheScenarioWithItsLine() async throws {
        let ranOn = Flag()
        let line = #line
        let r = await TestGuest.runner.run("swift-fail") { s in
            let m = try await s.machine(Self.tiny)
            try await m.succeed("true")
            try await m.succeed("exit 4")
            ranOn.set()
            try await m.succeed("true")
        }
        #expect(r.outcome == .failed)
        #expect(!ranOn.isSet, "nothing after the failing step ran")
        #expect(r.message == "step 2 `exit 4` (\(#filePath):\(line + 4)): exit status 4, expected 0", "\(r.message ?? "")")
        #expect(r.steps.map(\.outcome) == [.passed, .failed])
        let dir = try #require(r.runDirectory)
        let name = try #require(TestGuest.domainName(inRunDirectory: URL(fileURLWithPath: dir)))
        #expect(TestGuest.qemuPIDs(domain: name).isEmpty)
    }

    @Test func anErrorOfTheScenariosOwnFailsIt() async throws {
        struct Wrong: Error {}
        let r = await TestGuest.runner.run("swift-throws") { s in
            _ = try await s.machine(Self.tiny)
            throw Wrong()
        }
        #expect(r.outcome == .failed)
        #expect(r.message?.hasPrefix("the scenario threw: Wrong") == true, "\(r.message ?? "")")
    }

    @Test func cancellingTheTaskStopsTheStepAndDestroysEveryMachine() async throws {
        let up = AsyncStream<String>.makeStream()
        let task = Task { () -> ScenarioResult in
            await TestGuest.runner.run("swift-cancel") { s in
                let a = try await s.machine(Self.tiny, name: "a")
                let b = try await s.machine(Self.tiny, name: "b")
                up.continuation.yield(s.directory.path)
                async let x = a.succeed("sleep 600", timeout: 900)
                async let y = b.succeed("sleep 600", timeout: 900)
                _ = try await (x, y)
            }
        }
        var it = up.stream.makeAsyncIterator()
        let dir = try #require(await it.next())
        let names = ["a", "b"].compactMap { TestGuest.domainName(inRunDirectory: URL(fileURLWithPath: dir).appendingPathComponent($0)) }
        #expect(names.count == 2 && names[0] != names[1], "each machine has its own domain and transcripts: \(names)")
        // Both commands are running in their guests before the cancel.
        #expect(await TestGuest.eventually(60) { names.allSatisfy { TestGuest.channelShowsACommand(inRunDirectory: URL(fileURLWithPath: dir).appendingPathComponent($0 == names[0] ? "a" : "b")) } })
        task.cancel()
        let r = await task.value
        #expect(r.outcome == .interrupted, "\(r.message ?? "")")
        for n in names { #expect(TestGuest.qemuPIDs(domain: n).isEmpty, "no QEMU of \(n) is left") }
        // Machines declared by name one by one: the first to boot is the result's system.
        #expect(r.image == "tiny" && r.imageDigest?.count == 64 && r.kernelRelease != nil, "\(r.image ?? "-") \(r.imageDigest ?? "-")")
    }

    @Test func aBadMachineIsRefusedWithItsLine() async throws {
        let line = #line + 2
        let r = await TestGuest.runner.run("swift-bad-machine") { s in
            _ = try await s.machine(MachineDeclaration(.generation("no-such-generation")))
        }
        #expect(r.outcome == .failed)
        #expect(r.message?.hasPrefix("\(#filePath):\(line): ") == true, "\(r.message ?? "")")
    }
}

/// The example scenario program, built with the tests, run as a user runs it.
@Suite(.serialized) struct ScenarioProgramTests {
    /// `allowingFailed` is YAML's per-step `allow_failed:`: a unit a step
    /// leaves failed fails the scenario at its end, unless that step allowed it.
    @Test(arguments: [false, true])
    func aUnitAStepLeavesFailedFailsTheScenarioUnlessAllowed(allowed: Bool) async throws {
        _ = TestGuest.state
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let r = await TestGuest.runner.run("swift-allow-failed") { s in
            let m = try await s.machine(MachineDeclaration(.generation("debian"), memoryMiB: 512))
            let breaking = allowed ? m.allowingFailed("rehearse-broken") : m
            try await breaking.succeed("systemd-run --unit=rehearse-broken --wait sh -c 'exit 4' || true", name: "leave a unit failed")
            try await m.succeed("systemctl is-failed --quiet rehearse-broken", name: "it is failed")
        }
        #expect(r.steps.prefix(2).allSatisfy { $0.outcome == .passed }, "\(r.steps.map { "\($0.name) \($0.outcome)" })")
        if allowed {
            #expect(r.outcome == .passed, "\(r.message ?? "")")
            #expect(r.steps.count == 2)
        } else {
            #expect(r.outcome == .failed)
            #expect(r.steps.last?.message == "at the end of the scenario: a unit failed: rehearse-broken.service", "\(r.steps.last?.message ?? "")")
        }
    }

    @Test func theSwiftUpgradeScenarioPassesAndWritesJUnit() async throws {
        let junit = TestGuest.runs.appendingPathComponent("swift-upgrade-\(UUID().uuidString.prefix(6)).xml")
        let r = try CommandLineTests.start(CommandLineTests.executable("upgrade-app-swift"),
                                           ["--junit", junit.path, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait(900) == 0, "\(r.out)\n\(r.err)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.contains("name=\"demo 2.0 answers\""), "\(xml)")
        #expect(xml.components(separatedBy: "<testcase ").count - 1 == 10)
        #expect(r.out.contains("PASS") && r.out.contains("upgrade-app (Swift)"))
    }
}

/// Set once, read from anywhere (a test's probe that code did or did not run).
final class Flag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}
