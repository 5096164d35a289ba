import Foundation
import Testing
@testable import Rehearsal

/// The prompts a console login answers, read from what a getty and login print.
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
            #expect(throws: ScenarioError.self, "\(yaml)") { try ScenarioParser.parse(text: yaml, file: "t.yaml") }
        }
    }
}
