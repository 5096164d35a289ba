import Foundation
import Testing
@testable import Rehearsal

@Suite struct ScenarioParserTests {
    func parse(_ yaml: String) throws -> Scenario {
        try ScenarioParser.parse(text: yaml, file: "t.yaml")
    }

    func error(_ yaml: String) -> RehearsalError? {
        do { _ = try parse(yaml); return nil } catch let e as RehearsalError { return e } catch { return nil }
    }

    @Test func aStepNamesTheUnitsItIsExpectedToLeaveFailed() throws {
        let s = try parse("""
        machine: {image: tiny}
        steps:
          - succeed: systemctl stop db
            allow_failed: [db, app.socket]
          - checkpoint:
            allow_failed: [other]
          - succeed: "true"
        """)
        #expect(s.steps[0].allowFailed == ["db.service", "app.socket"])
        #expect(s.steps[1].allowFailed == ["other.service"])
        #expect(s.steps[2].allowFailed.isEmpty)
        let e = error("machine: {image: tiny}\nsteps:\n  - succeed: x\n    allow_failed: db\n")
        #expect(e?.description == "t.yaml:4: `allow_failed` is a list of unit names", "\(String(describing: e))")
    }

    @Test func theDocumentedFormatParses() throws {
        let s = try parse("""
        name: smoke
        machine:
          image: tiny
          memory: 512
          cpus: 2
        timeout: 90
        steps:
          - succeed: uname -r
          - fail: test -e /nope
          - run: cat /etc/os-release
            expect:
              exit: 0
              stdout_contains: "ID="
              stdout_equals: "exact text\\n"
              stdout_matches: "^ID=.*$"
              stderr_contains: "..."
          - wait_until_succeeds: test -e /tmp/ready
            timeout: 30
          - wait_for_console: "regex"
            name: console says regex
            timeout: 30
        """)
        #expect(s.name == "smoke")
        #expect(s.machine.image == "tiny" && s.machine.memoryMiB == 512 && s.machine.cpus == 2)
        #expect(s.timeout == 90)
        #expect(s.steps.map(\.kind) == ["succeed", "fail", "run", "wait_until_succeeds", "wait_for_console"])
        #expect(s.steps.map(\.line) == [8, 9, 10, 17, 19])
        #expect(s.steps[3].timeout == 30)
        #expect(s.steps[4].name == "console says regex")
        guard case .run(_, let e) = s.steps[2].action else { Issue.record("not a run step"); return }
        #expect(e.exit == 0 && e.stdoutContains == "ID=" && e.stdoutEquals == "exact text\n")
    }

    @Test func rebootIsABareWordOrTakesACommand() throws {
        let s = try parse("machine: {image: tiny}\nsteps:\n  - reboot\n  - reboot: systemctl reboot\n    timeout: 90\n")
        guard case .reboot(let a) = s.steps[0].action, case .reboot(let b) = s.steps[1].action else {
            Issue.record("not reboot steps"); return
        }
        #expect(a == "reboot" && b == "systemctl reboot")
        #expect(s.steps.map(\.line) == [3, 4])
        #expect(s.steps[1].timeout == 90)
        #expect(error("machine: {image: tiny}\nsteps:\n  - rebooot\n")?.line == 3)
    }

    @Test func unitAndPortWaits() throws {
        let s = try parse("machine: {image: tiny}\nsteps:\n  - wait_for_unit: nginx\n  - wait_for_unit: sshd.socket\n  - wait_for_open_port: 8080\n")
        guard case .waitForUnit(let a) = s.steps[0].action, case .waitForUnit(let b) = s.steps[1].action,
              case .waitForOpenPort(let port) = s.steps[2].action else { Issue.record("wrong kinds"); return }
        #expect(a == "nginx.service" && b == "sshd.socket" && port == 8080)
        #expect(error("machine: {image: tiny}\nsteps:\n  - wait_for_open_port: 70000\n")?.line == 3)
        #expect(error("machine: {image: tiny}\nsteps:\n  - wait_for_unit: 'a b; rm -rf /'\n")?.line == 3)
    }

    @Test func bootCheckIsOnByDefaultAndCanBeTunedOrSwitchedOff() throws {
        #expect(try parse("machine: {image: tiny}\nsteps: []\n").bootCheck.enabled)
        #expect(try !parse("machine: {image: tiny}\nboot_check: false\nsteps: []\n").bootCheck.enabled)
        let c = try parse("machine: {image: tiny}\nboot_check: {allow_failed: [a, b.socket], timeout: 30}\nsteps: []\n").bootCheck
        #expect(c.enabled && c.allowFailed == ["a.service", "b.socket"] && c.timeout == 30)
        #expect(error("machine: {image: tiny}\nboot_check: {allow: [a]}\nsteps: []\n")?.line == 2)
    }

    @Test func nameDefaultsToTheFileName() throws {
        let s = try ScenarioParser.parse(text: "machine: {image: tiny}\nsteps: []\n", file: "/x/upgrade-app.yaml")
        #expect(s.name == "upgrade-app")
        #expect(s.machine.memoryMiB == MachineSpec.defaultMemoryMiB)
    }

    @Test(arguments: [
        ("machine: {image: tiny}\nsteps:\n  - succeed: true\n  - reboot_now: x\n", 4, "unknown step key `reboot_now`"),
        ("machine: {image: tiny}\nstep: []\n", 2, "unknown key `step`"),
        ("machine:\n  image: tiny\n  disks: 3\nsteps: []\n", 3, "unknown key `disks` in machine"),
        ("machine: {image: tiny}\nsteps:\n  - wait_for_console: \"([unclosed\"\n", 3, "not a valid regular expression"),
        ("machine: {image: tiny}\nsteps:\n  - succeed: a\n    fail: b\n", 3, "more than one kind"),
        ("machine: {image: tiny}\nsteps:\n  - name: only a name\n", 3, "has no kind"),
        ("machine: {image: tiny}\nsteps:\n  - run: x\n    expect: {exit: 300}\n", 4, "between 0 and 255"),
        ("machine: {image: tiny}\nsteps:\n  - succeed: x\n    expect: {exit: 0}\n", 4, "`expect` belongs to a `run:` step"),
        ("machine: {image: tiny}\ntimeout: soon\nsteps: []\n", 2, "positive number of seconds"),
        ("machine: {image: tiny}\nsteps:\n  - succeed: [a, b]\n", 3, "must be a string"),
        ("steps: []\n", 1, "missing `machine:`"),
        ("machine: {image: tiny}\nsteps:\n  - succeed: 'a\n  - fail: b\n", 3, "not valid YAML"),
    ])
    func badInputNamesFileAndLine(yaml: String, line: Int, message: String) {
        let e = error(yaml)
        #expect(e != nil)
        #expect(e?.line == line, "\(e?.description ?? "no error")")
        #expect(e?.description.hasPrefix("t.yaml:\(line): ") == true)
        #expect(e?.message.contains(message) == true, "\(e?.message ?? "")")
    }

    @Test func missingImageIsRefusedBeforeBoot() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rh-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = dir.appendingPathComponent("s.yaml")
        try "name: x\nmachine:\n  image: no-such-image-anywhere\nsteps: []\n".write(to: f, atomically: true, encoding: .utf8)
        #expect {
            _ = try Runner.prepare(files: [f.path])
        } throws: { e in
            (e as? RehearsalError)?.description.hasPrefix("\(f.path):3: no image or generation `no-such-image-anywhere`") == true
        }
    }

    @Test func unreadableFileIsOneLine() {
        #expect {
            _ = try ScenarioParser.parse(file: "/nonexistent/s.yaml")
        } throws: { e in
            (e as? RehearsalError)?.description.hasPrefix("/nonexistent/s.yaml: cannot read") == true
        }
    }

    @Test func expectationsReportEveryMismatch() throws {
        var e = Expectation()
        e.exit = 0
        e.stdoutContains = "ID="
        e.stdoutMatches = try ConsolePattern("^VERSION=")
        e.stderrContains = "warn"
        let r = CommandResult(stdout: Array("NAME=x\n".utf8), stderr: [], status: 2)
        #expect(e.mismatches(r).count == 4)
        let ok = CommandResult(stdout: Array("ID=x\nVERSION=1\n".utf8), stderr: Array("warn".utf8), status: 0)
        #expect(e.mismatches(ok).isEmpty)
    }
}
