import Foundation

/// How to log in on the command channel when an image runs a getty there
/// rather than a root shell (`machine.console: {login: USER, password: PASS}`),
/// answering its prompts the way a person at a serial console would.
public struct ConsoleLogin: Sendable, Equatable {
    public var user: String
    /// nil when the image asks for none.
    public var password: String?

    public init(user: String, password: String? = nil) {
        self.user = user
        self.password = password
    }

    /// What the end of the channel's output shows.
    enum Prompt: Equatable { case login, password, incorrect, shell }

    /// Reads the last line of `text`: a getty's or login's prompt, a shell's,
    /// or login's refusal.
    static func prompt(in text: String) -> Prompt? {
        let tail = text.suffix(300)
        let lastLine = tail.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r" }).last.map(String.init) ?? ""
        let line = lastLine.replacingOccurrences(of: "\u{1b}\\[[0-9;?]*[A-Za-z]", with: "", options: .regularExpression)
        if line.range(of: #"[Pp]assword: *$"#, options: .regularExpression) != nil { return .password }
        if tail.range(of: #"[Ll]ogin incorrect"#, options: .regularExpression) != nil { return .incorrect }
        if line.range(of: #"login: *$"#, options: .regularExpression) != nil { return .login }
        if line.range(of: #"[#$] *$"#, options: .regularExpression) != nil { return .shell }
        return nil
    }
}

extension ShellSession {
    /// Logs in on the channel: pokes it with a newline until a prompt shows,
    /// answers `login:` and `Password:`, and returns once a shell prompt
    /// appears (or, when nothing more is asked, after a few quiet seconds;
    /// `connect` then probes for the shell). A shell already there (an
    /// image that logs in by itself) counts as logged in. Fails at once,
    /// naming the user, when the guest refuses the login.
    func logIn(_ login: ConsoleLogin, deadline: Deadline) async throws {
        var sentUser = false, sentPassword = false
        var quietSince = Deadline.now
        while true {
            let slice = Deadline.after(seconds: 1).earlier(deadline)
            var seen: ConsoleLogin.Prompt?
            do {
                seen = try await io.wait(until: slice, what: "logging in as \(login.user) on the command channel") { view in
                    guard let p = ConsoleLogin.prompt(in: String(decoding: view.channel.suffix(400), as: UTF8.self)) else { return nil }
                    view.channel.removeAll()
                    return p
                }
            } catch RehearsalError.Code.timeout where !deadline.hasPassed {
                seen = nil
            }
            switch seen {
            case .shell?:
                return
            case .incorrect?:
                throw RehearsalError.scenario("the guest refused the login as \(login.user) on the command channel (Login incorrect)")
            case .login?:
                if sentPassword {
                    throw RehearsalError.scenario("the guest asked for the login again after the password for \(login.user): the login failed")
                }
                try await write(login.user + "\n", deadline: deadline)
                sentUser = true
            case .password?:
                guard let password = login.password else {
                    throw RehearsalError.scenario("the guest asks for a password for \(login.user); give `machine.console.password`")
                }
                try await write(password + "\n", traced: "(the password)\n", deadline: deadline)
                sentPassword = true
            case nil:
                // Nothing to answer for a while: poke a getty into showing its
                // prompt, or, once everything was answered, let `connect` probe.
                if sentUser && Deadline.now.uptimeNanoseconds - quietSince.uptimeNanoseconds > 5_000_000_000 { return }
                if !sentUser { try await write("\n", deadline: deadline) }
                continue
            }
            quietSince = .now
        }
    }
}
