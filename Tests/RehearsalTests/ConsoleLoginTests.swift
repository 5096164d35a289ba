import Foundation
import Testing
@testable import Rehearsal

/// The prompts a console login answers, read from what a getty and login
/// print, and a login through a fake getty (`FakeGuest`).
@Suite struct ConsoleLoginTests {
    @Test func promptsAreReadFromTheLastLine() {
        #expect(ConsoleLogin.prompt(in: "\r\nDebian GNU/Linux 12 web-1 ttyS1\r\n\r\nweb-1 login: ") == .login)
        #expect(ConsoleLogin.prompt(in: "web-1 login: root\r\nPassword: ") == .password)
        #expect(ConsoleLogin.prompt(in: "Password: \r\n\r\nLogin incorrect\r\nweb-1 login: ") == .incorrect)
        #expect(ConsoleLogin.prompt(in: "Last login: Sat\r\nroot@web-1:~# ") == .shell)
        #expect(ConsoleLogin.prompt(in: "\u{1b}[?2004hroot@web-1:~# ") == .shell)
        #expect(ConsoleLogin.prompt(in: "~ $ ") == .shell)
        #expect(ConsoleLogin.prompt(in: "Starting systemd-logind...\r\n") == nil)
        #expect(ConsoleLogin.prompt(in: "login: is what it asks\r\nbooting") == nil, "only the last line counts")
    }

    @Test func consoleSettingsParse() throws {
        let s = try ScenarioParser.parse(text: "machine: {generation: tiny, console: {login: root, password: 'a b'}}\nsteps: []\n", file: "t.yaml")
        #expect(s.machine.console == ConsoleLogin(user: "root", password: "a b"))
        for yaml in ["machine: {generation: tiny, console: root}\nsteps: []\n",
                     "machine: {generation: tiny, console: {password: x}}\nsteps: []\n",
                     "machine: {generation: tiny, console: {login: 'a b'}}\nsteps: []\n",
                     "machine: {generation: tiny, console: {login: root, port: ttyS0}}\nsteps: []\n"] {
            #expect(throws: RehearsalError.self, "\(yaml)") { try ScenarioParser.parse(text: yaml, file: "t.yaml") }
        }
    }

    @Test func logsInThroughAGettyThenConnects() async throws {
        let rig = FakeGuestRig(.init(echo: true, login: .init(user: "root", password: "s3cret"))) { .ok("ran \($0)\n") }
        rig.guest.emit("\nDebian GNU/Linux 12 web-1 ttyS1\n\nweb-1 login: ")
        try await rig.session.logIn(ConsoleLogin(user: "root", password: "s3cret"), deadline: .after(seconds: 10))
        try await rig.session.connect(deadline: .after(seconds: 10))
        #expect(try await rig.session.run("id -u", deadline: .after(seconds: 10)).stdoutText == "ran id -u\n")
        #expect(rig.guest.record.strays.isEmpty, "\(rig.guest.record.strays)")
    }

    @Test func loginIncorrectFailsAtOnce() async {
        let rig = FakeGuestRig(.init(echo: true, login: .init(user: "root", password: "s3cret")))
        rig.guest.emit("web-1 login: ")
        let e = await FakeGuestRig.failure {
            try await rig.session.logIn(ConsoleLogin(user: "root", password: "wrong"), deadline: .after(seconds: 60))
        }
        guard let e, e.code == .scenario else { Issue.record("not a scenario error: \(String(describing: e))"); return }
        let message = e.message
        #expect(message.contains("Login incorrect") && message.contains("root"), "\(message)")
        // A deadline would have given a timeout, not this error: no clock needed.
    }
}
