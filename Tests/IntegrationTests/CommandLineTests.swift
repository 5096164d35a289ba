import Foundation
import Testing
@testable import Rehearsal

/// The `rehearse` executable as a user runs it: exit statuses, reports,
/// signals, concurrent runs and `rehearse clean`.
@Suite(.serialized) struct CommandLineTests {
    /// The `rehearse` built with these tests (the test target depends on it),
    /// beside the test bundle in whatever build folder this is.
    static var binary: URL { executable("rehearse") }

    static func executable(_ name: String) -> URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
            .appendingPathComponent(name)
    }

    struct Run {
        let process: Process
        let stdout: URL
        let stderr: URL
        var out: String { (try? String(contentsOf: stdout, encoding: .utf8)) ?? "" }
        var err: String { (try? String(contentsOf: stderr, encoding: .utf8)) ?? "" }
        func wait(_ seconds: Double = 300) async -> Int32? {
            guard await TestGuest.eventually(seconds, { !process.isRunning }) else { return nil }
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    static func start(_ args: [String], environment: [String: String] = [:]) throws -> Run { try start(binary, args, environment: environment) }

    /// Starts `executable`; `environment` is added to this process's.
    static func start(_ executable: URL, _ args: [String], environment: [String: String] = [:]) throws -> Run {
        _ = TestGuest.state
        try #require(FileManager.default.fileExists(atPath: executable.path), "no \(executable.path): the test build makes it")
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        p.currentDirectoryURL = TestGuest.repo
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let tmp = TestGuest.runs.appendingPathComponent("cli-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let out = tmp.appendingPathComponent("stdout"), err = tmp.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return Run(process: p, stdout: out, stderr: err)
    }

    static func sleeper() throws -> String {
        let p = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: sleep 600\n    timeout: 900\n", name: "sleeper")
        return p.scenario.file
    }

    /// Waits until the run under `runDir` has sent its first command (the
    /// guest's begin marker is in channel.log); returns the run's domain name.
    static func waitForFirstCommand(in runDir: URL, seconds: Double = 120) async -> String? {
        var name: String?
        _ = await TestGuest.eventually(seconds) {
            let dirs = (try? FileManager.default.contentsOfDirectory(atPath: runDir.path)) ?? []
            for d in dirs {
                let dir = runDir.appendingPathComponent(d)
                let data = FileManager.default.contents(atPath: dir.appendingPathComponent("channel.log").path) ?? Data()
                let started = data.split(separator: 1).contains { $0.first.map { (48...57).contains($0) } == true && $0.contains(UInt8(ascii: "B")) }
                if started { name = TestGuest.domainName(inRunDirectory: dir) }
            }
            return name != nil
        }
        return name
    }

    @Test func aBadScenarioExitsWithTwoAndOneLine() async throws {
        let p = TestGuest.runs.appendingPathComponent("bad.yaml")
        try FileManager.default.createDirectory(at: TestGuest.runs, withIntermediateDirectories: true)
        try "machine: {image: tiny}\nsteps:\n  - succeed: true\n  - frobnicate: x\n".write(to: p, atomically: true, encoding: .utf8)
        let r = try Self.start(["run", p.path])
        #expect(await r.wait(60) == 2)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.hasPrefix("rehearse: \(p.path):4: unknown step key `frobnicate`") == true, "\(r.err)")
        #expect(r.out.isEmpty)
    }

    @Test func badUsageExitsWithTwo() async throws {
        let r = try Self.start(["run", "--accel", "warp", "x.yaml"])
        #expect(await r.wait(60) == 2)
        #expect(r.err.contains("warp"))
    }

    @Test func failingScenarioExitsWithOneAndWritesJUnit() async throws {
        let s = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: \"true\"\n  - run: echo a\n    expect: {stdout_equals: b}\n  - succeed: \"true\"\n", name: "mismatch")
        let junit = TestGuest.runs.appendingPathComponent("junit-\(UUID().uuidString.prefix(6)).xml")
        let json = TestGuest.runs.appendingPathComponent("result-\(UUID().uuidString.prefix(6)).json")
        let r = try Self.start(["run", s.scenario.file, "--junit", junit.path, "--json", json.path, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait() == 1, "\(r.out)\n\(r.err)")
        let xml = try String(contentsOf: junit, encoding: .utf8)
        #expect(xml.components(separatedBy: "<testcase ").count - 1 == 3)
        #expect(xml.contains("<failure type=\"failed\" message=\"stdout is &quot;a\\n&quot;, expected &quot;b&quot;\""), "\(xml)")
        #expect(xml.contains("<skipped"))
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        #expect((obj?["scenarios"] as? [[String: Any]])?.first?["outcome"] as? String == "failed")
        #expect(r.out.contains("✗ [2/3]"))
    }

    @Test func filterAndShardChooseWhatRunsAndTAPReportsIt() async throws {
        let one = try TestGuest.scenario("name: pick-me\nmachine: {image: tiny}\nsteps:\n  - name: say hi\n    succeed: echo hi\n", name: "pick-me")
        let other = try TestGuest.scenario("name: leave-me\nmachine: {image: tiny}\nsteps:\n  - succeed: \"false\"\n", name: "leave-me")
        let files = [one.scenario.file, other.scenario.file]
        // Nothing matches: refused before anything boots, naming the pattern.
        let none = try Self.start(["run"] + files + ["--filter", "nothing-*", "--run-dir", TestGuest.runs.path])
        #expect(await none.wait(60) == 2)
        #expect(none.err.contains("no scenario matches --filter nothing-*"), "\(none.err)")
        let bad = try Self.start(["run"] + files + ["--shard", "3/2"])
        #expect(await bad.wait(60) == 2)
        #expect(bad.err.contains("1 ≤ I ≤ N"), "\(bad.err)")
        // A step's name selects its scenario; the other one (which would fail) never runs.
        let tap = TestGuest.runs.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).tap")
        let r = try Self.start(["run"] + files + ["--filter", "say *", "--tap", tap.path, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait() == 0, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("--filter keeps 1 of 2 scenarios"), "\(r.out)")
        let text = try String(contentsOf: tap, encoding: .utf8)
        #expect(text.hasPrefix("TAP version 14\n1..1\n# Subtest: pick-me\n    1..1\n    ok 1 - say hi\nok 1 - pick-me\n"), "\(text)")
        // Two shards of the two files: each runs one, and an empty third shard runs none and passes.
        let empty = try Self.start(["run"] + files + ["--shard", "3/3", "--run-dir", TestGuest.runs.path])
        #expect(await empty.wait(60) == 0, "\(empty.out)\n\(empty.err)")
        #expect(empty.out.contains("shard 3/3: 0 of 2 scenario files") && empty.out.contains("nothing to run"), "\(empty.out)")
    }

    @Test func theHTMLReportShowsEveryScenarioAndStepInABrowser() async throws {
        let pass = try TestGuest.scenario("name: page-pass\nmachine: {image: tiny}\nsteps:\n  - name: guest markup\n    succeed: echo '<b>bold</b> & more'\n", name: "page-pass")
        let fail = try TestGuest.scenario("name: page-fail\nmachine: {image: tiny}\nsteps:\n  - name: it breaks\n    succeed: echo '<i>oops</i>'; false\n  - succeed: \"true\"\n", name: "page-fail")
        let page = TestGuest.runs.appendingPathComponent("run-\(UUID().uuidString.prefix(6)).html")
        let r = try Self.start(["run", pass.scenario.file, fail.scenario.file, "--retries", "1", "--html", page.path, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait() == 1, "\(r.out)\n\(r.err)")
        let browser = try TestGuest.Browser()
        defer { browser.close() }
        let dom = try await browser.dump(page)
        #expect(dom.contains("class=\"js\""), "the script ran")
        #expect(dom.contains("<strong>FAILED</strong>: 2 scenarios, 1 passed, 1 failed"), "\(dom.prefix(2000))")
        // The guest's markup is text on the page, never elements of it.
        #expect(dom.contains("&lt;b&gt;bold&lt;/b&gt; &amp; more") && !dom.contains("<b>bold</b>"))
        let failing = try #require(dom.range(of: "<h2>page-fail"))
        let section = dom[failing.lowerBound...]
        #expect(section.contains("&lt;i&gt;oops&lt;/i&gt;") && section.contains("exit status 1"))
        #expect(section.contains("1 earlier failed attempt") && section.contains(">skipped<"))
        let png = try await browser.screenshot(page, to: page.deletingPathExtension().appendingPathExtension("png"))
        #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    }

    @Test func aShellTakesWhatIsTypedAndLeavingDestroysTheMachine() async throws {
        // Through a pseudo-terminal, as a person types.
        let (p, keys, text) = try Self.underTerminal(["shell", "tiny", "--run-dir", TestGuest.runs.path])
        defer { if p.isRunning { p.terminate() } }
        #expect(await TestGuest.eventually(180) { text().contains("Leave with Ctrl-]") }, "\(text())")
        let name = try #require(text().firstMatch(of: /\((rehearse-[0-9a-f-]+), run directory/).map { String($0.1) }, "\(text())")
        #expect(!TestGuest.qemuPIDs(domain: name).isEmpty)
        // The quotes make the echoed line differ from the output: only the guest's shell joins them.
        keys.write(Data("echo sh\"\"ell-$((6*7))\r".utf8))
        #expect(await TestGuest.eventually(60) { text().contains("shell-42") }, "\(text())")
        keys.write(Data([0x1d]))
        #expect(await TestGuest.eventually(60) { !p.isRunning }, "Ctrl-] leaves: \(text())")
        #expect(p.terminationStatus == 0 && text().contains("left with Ctrl-]"), "\(text())")
        #expect(TestGuest.qemuPIDs(domain: name).isEmpty)

        // With no terminal, the end of the input leaves.
        let eof = try Self.start(["shell", "tiny", "--run-dir", TestGuest.runs.path])
        #expect(await eof.wait(180) == 0, "\(eof.out)\n\(eof.err)")
        #expect(eof.out.contains("Leave by ending the input") && eof.out.contains("end of input"), "\(eof.out)")
        let other = try #require(eof.out.firstMatch(of: /\((rehearse-[0-9a-f-]+), run directory/).map { String($0.1) })
        #expect(TestGuest.qemuPIDs(domain: other).isEmpty)
    }

    /// Runs `rehearse ARGS` under a pseudo-terminal (util-linux `script`), as a person types:
    /// returns the process, a pipe for the keys and the typescript so far.
    static func underTerminal(_ args: [String]) throws -> (Process, FileHandle, @Sendable () -> String) {
        let input = Pipe()
        let tmp = TestGuest.runs.appendingPathComponent("tty-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        let out = tmp.appendingPathComponent("typescript")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        p.arguments = ["-qfec", ([binary.path] + args).map { "'\($0)'" }.joined(separator: " "), "/dev/null"]
        p.currentDirectoryURL = TestGuest.repo
        p.standardInput = input
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = p.standardOutput
        try p.run()
        return (p, input.fileHandleForWriting, { (try? String(contentsOf: out, encoding: .utf8)) ?? "" })
    }

    @Test func aKeptMachineCanBeAttachedToAndStopped() async throws {
        let s = try TestGuest.scenario("name: keep-me\nmachine: {image: tiny}\nsteps:\n  - succeed: echo kept > /tmp/evidence; false\n", name: "keep-me")
        let run = try Self.start(["run", s.scenario.file, "--keep-on-failure", "--run-dir", TestGuest.runs.path])
        defer { if run.process.isRunning { run.process.terminate() } }
        #expect(await TestGuest.eventually(120) { run.out.contains("rehearse stop ") }, "\(run.out)\n\(run.err)")
        let id = try #require(run.out.firstMatch(of: /rehearse stop ([0-9a-f-]+)/).map { String($0.1) }, "\(run.out)")
        let dir = try #require(run.out.firstMatch(of: /run directory: (\S+); \^C/).map { URL(fileURLWithPath: String($0.1)) })
        let name = try #require(TestGuest.domainName(inRunDirectory: dir))
        #expect(!TestGuest.qemuPIDs(domain: name).isEmpty, "the failed scenario's machine is kept")
        #expect(run.process.isRunning)

        // attach: the kept machine is the one that failed (the file its step wrote is there).
        let (attach, keys, text) = try Self.underTerminal(["attach", id, "--run-dir", TestGuest.runs.path])
        defer { if attach.isRunning { attach.terminate() } }
        #expect(await TestGuest.eventually(60) { text().contains("Leave with Ctrl-]") }, "\(text())")
        keys.write(Data("cat /tmp/evid\"\"ence; echo at\"\"tached\r".utf8))
        #expect(await TestGuest.eventually(60) { text().contains(/kept\s+attached/) }, "\(text())")
        keys.write(Data([0x1d]))
        #expect(await TestGuest.eventually(60) { !attach.isRunning }, "\(text())")
        #expect(attach.terminationStatus == 0)
        #expect(!TestGuest.qemuPIDs(domain: name).isEmpty && run.process.isRunning, "leaving attach keeps the machine")

        // Bad input: one line, exit 2.
        let wrong = try Self.start(["attach", id, "--machine", "nope", "--run-dir", TestGuest.runs.path])
        #expect(await wrong.wait(60) == 2 && wrong.err.contains("no machine nope (machines: machine)"), "\(wrong.err)")
        let missing = try Self.start(["stop", "19990101-000000-000000", "--run-dir", TestGuest.runs.path])
        #expect(await missing.wait(60) == 2 && missing.err.contains("no run 19990101-000000-000000"), "\(missing.err)")

        // stop: the run destroys the machine and ends with the scenario's verdict.
        let stop = try Self.start(["stop", id, "--run-dir", TestGuest.runs.path])
        #expect(await stop.wait(60) == 0, "\(stop.out)\n\(stop.err)")
        #expect(await run.wait(60) == 1, "\(run.out)\n\(run.err)")
        #expect(TestGuest.qemuPIDs(domain: name).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("keep.sock").path))
    }

    @Test func steppingPausesBeforeEachStepAndAPersonCanActMeanwhile() async throws {
        let yaml = "name: stepper\nmachine: {image: tiny}\nsteps:\n  - succeed: \"true\"\n  - pause: make /tmp/two\n  - name: the person made it\n    succeed: test -f /tmp/two\n"
        let s = try TestGuest.scenario(yaml, name: "stepper")
        // Not at a terminal and without --step, the pause passes straight on: the last step fails.
        let plain = try Self.start(["run", s.scenario.file, "--run-dir", TestGuest.runs.path])
        #expect(await plain.wait() == 1, "\(plain.out)\n\(plain.err)")
        #expect(plain.out.contains("the person made it"), "\(plain.out)")

        let json = TestGuest.runs.appendingPathComponent("step-\(UUID().uuidString.prefix(6)).json")
        let run = try Self.start(["run", s.scenario.file, "--step", "--json", json.path, "--run-dir", TestGuest.runs.path])
        defer { if run.process.isRunning { run.process.terminate() } }
        func pauses() -> Int { run.out.components(separatedBy: "paused before step").count - 1 }
        func next(_ n: Int) async throws -> String {
            #expect(await TestGuest.eventually(120) { pauses() >= n }, "\(run.out)\n\(run.err)")
            return try #require(run.out.firstMatch(of: /rehearse continue ([0-9a-f-]+)/).map { String($0.1) })
        }
        let id = try await next(1)
        #expect(run.out.contains("paused before step 1"))
        #expect(await (try Self.start(["continue", id, "--run-dir", TestGuest.runs.path])).wait(60) == 0)
        _ = try await next(2)
        #expect(run.out.contains("paused before step 2 `pause: make /tmp/two`: make /tmp/two"), "\(run.out)")
        // Meanwhile a person attaches and does what the note asks.
        let (attach, keys, text) = try Self.underTerminal(["attach", id, "--run-dir", TestGuest.runs.path])
        defer { if attach.isRunning { attach.terminate() } }
        #expect(await TestGuest.eventually(60) { text().contains("Leave with Ctrl-]") }, "\(text())")
        keys.write(Data("touch /tmp/two; echo to\"\"uched\r".utf8))
        #expect(await TestGuest.eventually(60) { text().contains("touched") }, "\(text())")
        keys.write(Data([0x1d]))
        #expect(await TestGuest.eventually(60) { !attach.isRunning })
        #expect(await (try Self.start(["continue", id, "--run-dir", TestGuest.runs.path])).wait(60) == 0)
        _ = try await next(3)
        #expect(await (try Self.start(["continue", id, "--run-dir", TestGuest.runs.path])).wait(60) == 0)
        #expect(await run.wait() == 0, "\(run.out)\n\(run.err)")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let steps = ((obj?["scenarios"] as? [[String: Any]])?.first?["steps"] as? [[String: Any]]) ?? []
        #expect(steps.map { $0["outcome"] as? String ?? "?" } == ["passed", "passed", "passed"], "\(steps)")
        #expect((steps[1]["stdout"] as? String)?.hasPrefix("paused for ") == true)
    }

    @Test(arguments: [SIGINT, SIGTERM])
    func aSignalDuringAStepLeavesNoQEMU(signal: Int32) async throws {
        let runDir = TestGuest.runs.appendingPathComponent("signal-\(signal)-\(UUID().uuidString.prefix(6))")
        let json = runDir.appendingPathComponent("result.json")
        let r = try Self.start(["run", try Self.sleeper(), "--run-dir", runDir.path, "--json", json.path])
        let name = try #require(await Self.waitForFirstCommand(in: runDir), "the run never started its step: \(r.out) \(r.err)")
        #expect(!TestGuest.qemuPIDs(domain: name).isEmpty)
        kill(r.process.processIdentifier, signal)
        #expect(await r.wait(60) == 130, "\(r.out)\n\(r.err)")
        #expect(await TestGuest.eventually(10) { TestGuest.qemuPIDs(domain: name).isEmpty })
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
        let scenario = (obj?["scenarios"] as? [[String: Any]])?.first
        #expect(scenario?["outcome"] as? String == "interrupted")
    }

    @Test func twoRunsAtOnceBothWork() async throws {
        let smoke = TestGuest.repo.appendingPathComponent("Scenarios/smoke.yaml").path
        let a = try Self.start(["run", smoke, "--run-dir", TestGuest.runs.path])
        let b = try Self.start(["run", smoke, "--run-dir", TestGuest.runs.path])
        #expect(await a.wait() == 0, "\(a.out)\n\(a.err)")
        #expect(await b.wait() == 0, "\(b.out)\n\(b.err)")
    }

    @Test func scenariosInParallelGiveTheSameResultsAsOneAfterTheOther() async throws {
        let pass = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: \"true\"\n  - run: echo hi\n    expect: {stdout_equals: \"hi\\n\"}\n", name: "jobs-pass")
        let fail = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: \"false\"\n  - succeed: \"true\"\n", name: "jobs-fail")
        let pass2 = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: uname -r\n", name: "jobs-pass2")
        let files = [pass, fail, pass2].map(\.scenario.file)
        func run(_ jobs: Int) async throws -> (status: Int32?, outcomes: [[String]], out: String) {
            let json = TestGuest.runs.appendingPathComponent("jobs\(jobs)-\(UUID().uuidString.prefix(6)).json")
            let r = try Self.start(["run", "--jobs", "\(jobs)", "--json", json.path, "--run-dir", TestGuest.runs.path] + files)
            let status = await r.wait()
            let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: json)) as? [String: Any]
            let scenarios = obj?["scenarios"] as? [[String: Any]] ?? []
            let outcomes = scenarios.map { s in
                [s["name"] as? String ?? "?", s["outcome"] as? String ?? "?"]
                    + ((s["steps"] as? [[String: Any]]) ?? []).map { "\($0["name"] ?? "?")=\($0["outcome"] ?? "?")" }
            }
            return (status, outcomes, r.out)
        }
        let one = try await run(1), three = try await run(3)
        #expect(one.status == 1 && three.status == 1)
        #expect(one.outcomes == three.outcomes, "\(one.outcomes) vs \(three.outcomes)")
        #expect(three.outcomes.map { $0[1] } == ["passed", "failed", "passed"], "results in the order given: \(three.outcomes)")
        // In parallel each scenario's lines are printed whole: nothing of another between its header and its verdict.
        for name in ["jobs-pass", "jobs-fail", "jobs-pass2"] {
            let lines = three.out.split(separator: "\n").map(String.init)
            let start = try #require(lines.firstIndex { $0.hasPrefix("● \(name)-") }, "\(three.out)")
            let end = try #require(lines[start...].firstIndex { $0.contains(" in ") && $0.contains("run directory:") }, "\(three.out)")
            #expect(!lines[(start + 1)..<end].contains { $0.hasPrefix("●") }, "\(three.out)")
        }
    }

    @Test func aMachineTheHostCannotHoldIsAnInfrastructureFailure() async throws {
        let huge = try TestGuest.scenario("machine: {image: tiny, memory: 1000000}\nsteps:\n  - succeed: \"true\"\n", name: "huge")
        let r = try Self.start(["run", huge.scenario.file, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait() == 3, "\(r.out)\n\(r.err)")
        #expect(r.out.contains("the host is out of memory: a machine of 1000000 MiB"), "\(r.out)")
    }

    @Test func cleanRemovesWhatAKilledRunLeft() async throws {
        let shared = try await TestGuest.machine()
        let runDir = TestGuest.runs.appendingPathComponent("sigkill-\(UUID().uuidString.prefix(6))")
        let r = try Self.start(["run", try Self.sleeper(), "--run-dir", runDir.path])
        let name = try #require(await Self.waitForFirstCommand(in: runDir), "the run never started its step: \(r.out) \(r.err)")
        kill(r.process.processIdentifier, SIGKILL)
        _ = await r.wait(30)
        let leftover = TestGuest.qemuPIDs(domain: name)
        #expect(!leftover.isEmpty, "a SIGKILLed run's QEMU outlives it (that is what clean is for)")
        let c = try Self.start(["clean"])
        #expect(await c.wait(120) == 0, "\(c.out)\n\(c.err)")
        #expect(c.out.contains("removed domain: \(name)"), "\(c.out)")
        #expect(await TestGuest.eventually(15) { TestGuest.qemuPIDs(domain: name).isEmpty })
        // The shared guest belongs to a live process: clean must not touch it.
        #expect(!TestGuest.qemuPIDs(domain: shared.name).isEmpty)
        #expect(try await TestGuest.machine().run("echo ok", deadline: .after(seconds: 10)).stdoutText == "ok\n")
    }

    @Test func generationsListsAndShowsWhatWasBuilt() async throws {
        // Build (or find) the debian recipe the way a user would.
        let built = try Self.start(["image", "build", "debian"])
        #expect(await built.wait(600) == 0, "\(built.err)")
        #expect(built.out.contains("generation debian-firmware"), "\(built.out)")
        let list = try Self.start(["generations"])
        #expect(await list.wait(60) == 0)
        let firmware = try #require(list.out.split(separator: "\n").first { $0.hasPrefix("debian-firmware ") }, "\(list.out)")
        #expect(firmware.contains("firmware") && firmware.contains(" debian "), "the parent is listed: \(firmware)")
        let show = try Self.start(["generations", "show", "debian-firmware", "--json"])
        #expect(await show.wait(60) == 0)
        let g = try JSONCoding.decoder.decode(Generation.self, from: Data(show.out.utf8))
        #expect(g.name == "debian-firmware" && g.boot == .firmware && g.parent == "debian" && g.kernel == nil)
        #expect(g.digest.count == 64 && firmware.contains(g.shortDigest))
        let missing = try Self.start(["generations", "show", "no-such-generation"])
        #expect(await missing.wait(60) == 2)
        #expect(missing.err.split(separator: "\n").count == 1 && missing.err.contains("no-such-generation"))
    }
}

