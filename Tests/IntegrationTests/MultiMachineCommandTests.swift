import Foundation
import Testing
@testable import Rehearsal

/// Scenarios with several machines through `rehearse run`, `gate` and
/// `compare`, as a user runs them: real tiny guests (and the NixOS fixture)
/// under TCG.
@Suite(.serialized) struct MultiMachineCommandTests {
    static let pair = """
        machines:
          server: {generation: tiny}
          client: {generation: tiny}

        """

    /// The one run directory `rehearse run --run-dir PARENT` made.
    static func runDirectory(in parent: URL) -> URL? {
        ((try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []).sorted().first.map(parent.appendingPathComponent)
    }

    static func console(of machine: String, in run: URL) -> String {
        (try? String(contentsOf: run.appendingPathComponent("\(machine)/console.log"), encoding: .utf8)) ?? ""
    }

    @Test func anInterruptDuringAMultiMachineScenarioLeavesNoQEMUForAnyMachine() async throws {
        // The step says on the client's console that it began, then waits for good.
        let s = try TestGuest.scenario(Self.pair + """
        steps:
          - succeed: "true"
            on: server
          - succeed: echo the-step-began > /dev/console; sleep 600
            on: client
        """, name: "signal-pair")
        let parent = TestGuest.runs.appendingPathComponent("signal-pair-\(UUID().uuidString.prefix(6))")
        let json = parent.appendingPathExtension("json")
        let r = try CommandLineTests.start(["run", s.scenario.file, "--run-dir", parent.path, "--json", json.path])
        var run: URL?
        let began = await TestGuest.eventually(240) {
            run = Self.runDirectory(in: parent)
            return run.map { Self.console(of: "client", in: $0).contains("the-step-began") } ?? false
        }
        #expect(began, "the client's step never began: \(r.out)\n\(r.err)")
        let dir = try #require(run)
        let domains = try ["server", "client"].map { m in
            try #require(TestGuest.domainName(inRunDirectory: dir.appendingPathComponent(m)), "no domain for \(m)")
        }
        #expect(domains.allSatisfy { !TestGuest.qemuPIDs(domain: $0).isEmpty }, "both machines run")
        kill(r.process.processIdentifier, SIGINT)
        #expect(await r.wait(60) == 130, "\(r.out)\n\(r.err)")
        #expect(await TestGuest.eventually(10) { domains.allSatisfy { TestGuest.qemuPIDs(domain: $0).isEmpty } }, "a QEMU is left")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let scenario = (obj?["scenarios"] as? [[String: Any]])?.first
        #expect(scenario?["outcome"] as? String == "interrupted")
    }

    /// `run --jobs 2` on two scenarios whose networks have the same
    /// addresses: each pauses (at a terminal) once its server serves, and
    /// only when both serve do their clients ask. Each client hears only its
    /// own server, and the third machine of one is not there for the other.
    @Test func twoMultiMachineScenariosRunWithJobsTwoCannotSeeEachOthersNetworks() async throws {
        func yaml(_ id: String, third: Bool) -> String {
            """
            name: apart-\(id)
            machines:
              server: {generation: tiny}
              client: {generation: tiny}
            \(third ? "  third: {generation: tiny}\n" : "")timeout: 400
            steps:
              - succeed: mkdir -p /www && echo page-\(id) > /www/index.html && httpd -p 8080 -h /www
                on: server
              - wait_for_open_port: 8080
                on: server
              - pause: both scenarios serve
                on: client
              - run: for i in 1 2 3 4 5; do wget -q -O - http://10.0.1.1:8080/; done
                name: the client hears its own server only
                on: client
                expect: {stdout_equals: "\(String(repeating: "page-\(id)\\n", count: 5))"}
              - \(third ? "succeed" : "fail"): ping -c 2 -W 1 10.0.1.3
                name: the third machine is here only where it was declared
                on: client

            """
        }
        let a = try TestGuest.scenario(yaml("a", third: false), name: "apart-a").scenario.file
        let b = try TestGuest.scenario(yaml("b", third: true), name: "apart-b").scenario.file
        let json = TestGuest.runs.appendingPathComponent("apart-\(UUID().uuidString.prefix(6)).json")
        let (p, _, text) = try CommandLineTests.underTerminal(["run", "--jobs", "2", "--json", json.path, "--run-dir", TestGuest.runs.path, a, b])
        defer { if p.isRunning { p.terminate() } }
        func paused() -> Set<String> { Set(text().matches(of: /rehearse continue ([0-9a-f-]+)/).map { String($0.1) }) }
        #expect(await TestGuest.eventually(400) { paused().count == 2 || !p.isRunning }, "both never paused: \(text())")
        for id in paused() {
            #expect(await (try CommandLineTests.start(["continue", id, "--run-dir", TestGuest.runs.path])).wait(60) == 0)
        }
        #expect(await TestGuest.eventually(300) { !p.isRunning })
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(text())")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let scenarios = (obj?["scenarios"] as? [[String: Any]]) ?? []
        #expect(scenarios.map { $0["outcome"] as? String ?? "?" } == ["passed", "passed"], "\(scenarios)")
    }

    /// A scenario with a client and a server: the server, declared second
    /// (not the first machine), is the one being upgraded.
    static func upgradeUnderClient() throws -> String {
        try TestGuest.scenario("""
        machines:
          client: {generation: tiny}
          server: {generation: tiny}
        steps:
          - succeed: grep -q ID=nixos /etc/os-release
            name: the server runs the candidate
            on: server
          - succeed: test ! -e /run/current-system && ! grep -q ID=nixos /etc/os-release
            name: the client runs what the scenario says
            on: client
          - succeed: mkdir -p /www && echo upgraded > /www/index.html && httpd -p 8080 -h /www
            on: server
          - run: wget -q -O - http://server:8080/
            name: the client reaches the upgraded server
            on: client
            expect: {stdout_equals: "upgraded\\n"}
        """, name: "gate-server").scenario.file
    }

    @Test func aGatesCandidateReplacesOnlyTheMachinesItNames() async throws {
        let fixture = try await CandidateFormTests.nixosFixture()
        defer { try? HostCommand.run(["chmod", "-R", "u+w", fixture.path]) }
        let candidate = fixture.appendingPathComponent("result").path
        let scenario = try Self.upgradeUnderClient()
        let marker = TestGuest.runs.appendingPathComponent("gate-machine-\(UUID().uuidString.prefix(8)).out")

        let unknown = try CommandLineTests.start(["gate", "--candidate", candidate, "--machine", "web", "--scenario", scenario, "--", "touch", marker.path])
        #expect(await unknown.wait(60) == 2)
        #expect(unknown.err == "rehearse: \(scenario): no machine `web` here (its machines: client, server)\n", "\(unknown.err)")

        let gate = try CommandLineTests.start(["gate", "--candidate", candidate, "--machine", "server", "--scenario", scenario, "--", "touch", marker.path])
        #expect(await gate.wait() == 0, "\(gate.out)\n\(gate.err)")
        #expect(FileManager.default.fileExists(atPath: marker.path))
        let h = GateTests.history(marker)
        #expect(h.map(\.decision) == [.ran] && h.first?.machines == ["server"], "\(h)")
        // The decision names the candidate's digest, not the client's generation.
        let g = try await TestGuest.runner.generation(Candidate.named(candidate, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil)))
        #expect(h.first?.candidateDigest == g.digest)
        let table = try CommandLineTests.start(["gate", "--history"])
        #expect(await table.wait(60) == 0)
        #expect(table.out.contains("\(candidate) on server"), "\(table.out)")
    }

    /// Both sides boot the same roles: the server boots OLD or NEW and is
    /// probed; the client boots the scenario's own generation on both.
    @Test func aCompareOfAMultiMachineScenarioProbesTheNamedMachineOnBothSides() async throws {
        let fixture = try await CandidateFormTests.nixosFixture()
        defer { try? HostCommand.run(["chmod", "-R", "u+w", fixture.path]) }
        let paths = ImageRecipe.searchPaths(scenarioFile: nil)
        let new = try Candidate.named(fixture.appendingPathComponent("result").path, searchPaths: paths)
        let old = try Candidate.named("tiny", searchPaths: paths)
        let scenario = try Runner.prepare(files: [Self.upgradeUnderClient()])[0]
        let c = try await CompareRunner(runner: TestGuest.runner).compare(.init(old: old, new: new, scenario: scenario, machines: ["server"]))
        #expect(c.old.machine == "server" && c.new.machine == "server")
        #expect(c.new.generation.version == "NixOS 24.11.19700101.fixture", "\(c.new.generation.version)")
        #expect(c.new.snapshot.osRelease["ID"] == "nixos" && c.old.snapshot.osRelease["ID"] != "nixos", "the servers were probed: \(c.new.snapshot.osRelease)")
        // On OLD the server is not NixOS: that first step fails there (and the
        // rest is skipped), and passes on NEW, where every step passes.
        #expect(c.old.steps.first?.outcome == .failed && c.new.steps.map(\.outcome) == [.passed, .passed, .passed, .passed], "\(c.old.steps.map(\.outcome)) \(c.new.steps.map(\.outcome))")
        #expect(c.assertions.first?.kind == .fix, "\(c.assertions)")
        // The probed machine's console is the one in the report, which says which it is.
        let dir = try #require(c.new.machineDirectory)
        #expect(dir.hasSuffix("/server") && FileManager.default.fileExists(atPath: dir + "/console.log"))
        let html = CompareReport.html(c)
        #expect(html.components(separatedBy: "probed on machine <code>server</code>").count == 3)
        #expect(html.contains("stage 2: /nix/store/"), "NEW's console log is the server's")
    }

    /// One machine of two cannot boot (its system powers off in stage 2):
    /// the scenario fails there, its steps are skipped, and the machine that
    /// booted (or was booting) is destroyed with it.
    @Test func aMachineThatCannotBootFailsTheScenarioAndTheOtherIsDestroyed() async throws {
        let fixture = try await CandidateFormTests.nixosFixture()
        defer { try? HostCommand.run(["chmod", "-R", "u+w", fixture.path]) }
        let fm = FileManager.default
        let top = fixture.appendingPathComponent("result").resolvingSymlinksInPath()
        let store = top.deletingLastPathComponent()
        let broken = store.appendingPathComponent("0000000000000000000000000000000b-nixos-system-broken")
        try HostCommand.run(["chmod", "u+w", store.path])
        try fm.createDirectory(at: broken, withIntermediateDirectories: false)
        for link in ["kernel", "initrd", "sw"] {
            try fm.createSymbolicLink(atPath: broken.appendingPathComponent(link).path,
                                      withDestinationPath: try fm.destinationOfSymbolicLink(atPath: top.appendingPathComponent(link).path))
        }
        for file in ["kernel-params", "nixos-version", "system"] {
            try fm.copyItem(at: top.appendingPathComponent(file), to: broken.appendingPathComponent(file))
        }
        let sw = try fm.destinationOfSymbolicLink(atPath: top.appendingPathComponent("sw").path)
        try "#!\(sw)/bin/sh\necho stage 2 gives up\n\(sw)/bin/poweroff -f\n".write(to: broken.appendingPathComponent("init"), atomically: true, encoding: .utf8)
        try HostCommand.run(["chmod", "0755", broken.appendingPathComponent("init").path])
        let p = try TestGuest.scenario("""
        machines:
          server: {nixos: \(broken.path)}
          client: {generation: tiny}
        steps:
          - succeed: "true"
            on: client
        """, name: "cannot-boot")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed, "\(r.outcome) \(r.message ?? "")")
        #expect(r.message?.contains("boot of server") == true, "\(r.message ?? "")")
        #expect(r.steps.map(\.outcome) == [.skipped])
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        for m in ["server", "client"] {
            // The client started (it has a domain); neither QEMU is left.
            let domain = try #require(TestGuest.domainName(inRunDirectory: dir.appendingPathComponent(m)), "\(m) never started")
            #expect(TestGuest.qemuPIDs(domain: domain).isEmpty, "\(m)'s QEMU is left")
        }
    }
}
