import Foundation

/// The COMMAND of `rehearse preview` and `gate --preview`: an APT command
/// that changes packages, the only kind whose downloads can be fetched on
/// the host ahead of time (the guest has no network).
///
///     try AptCommand(["apt-get", "dist-upgrade", "-y"])      // ok
///     try AptCommand(["apt", "install", "-y", "nginx"])       // ok
///     try AptCommand(["dnf", "upgrade"])                      // refused, naming what is supported
public struct AptCommand: Sendable, Equatable {
    public let argv: [String]
    /// The action word (`install`, `dist-upgrade`, …).
    public let action: String

    static let tools: Set = ["apt-get", "apt"]
    static let actions = ["install", "reinstall", "upgrade", "dist-upgrade", "full-upgrade", "remove", "purge", "autoremove"]

    public init(_ argv: [String]) throws {
        let tool = argv.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
        let supported = "preview supports apt-get or apt with \(Self.actions.joined(separator: ", ")) (for another package manager, capture the host and rehearse with `rehearse gate --candidate host`)"
        guard Self.tools.contains(tool) else {
            throw RehearsalError(.badHost, "`\(argv.joined(separator: " "))` is not an APT command: \(supported)")
        }
        guard let action = Self.action(in: Array(argv.dropFirst())), Self.actions.contains(action) else {
            throw RehearsalError(.badHost, "`\(argv.joined(separator: " "))` changes no packages APT can fetch first: \(supported)")
        }
        self.argv = argv
        self.action = action
    }

    /// Options whose value is the next word (`-o X=Y`, `-t bookworm-backports`, `-c FILE`).
    static let takingValue: Set = ["-o", "--option", "-t", "--target-release", "--default-release", "-c", "--config-file"]

    /// The first word that is neither an option nor an option's value.
    static func action(in args: [String]) -> String? {
        var skip = false
        for a in args {
            if skip { skip = false; continue }
            if takingValue.contains(a) { skip = true; continue }
            if a.hasPrefix("-") { continue }
            return a
        }
        return nil
    }

    /// Its arguments after the tool's name.
    var arguments: [String] { Array(argv.dropFirst()) }

    /// On the host: the same request in APT's download-only mode (apt-get,
    /// whose interface is stable for scripts), answering yes, with no
    /// progress meter.
    var downloadArgv: [String] {
        // `apt upgrade` installs new dependencies; `apt-get upgrade` does not unless asked.
        let extra = tool == "apt" && action == "upgrade" ? ["--with-new-pkgs"] : []
        return ["apt-get"] + arguments + extra + ["--download-only", "--yes", "--quiet"]
    }

    var tool: String { URL(fileURLWithPath: argv[0]).lastPathComponent }

    /// In the guest: the command as given, never downloading (what the host
    /// fetched is in the archive cache; anything else fails as APT says).
    /// No one is there to answer: APT's question is answered yes, debconf's
    /// get their defaults, and a changed conffile is kept (dpkg's default).
    var guestCommand: String {
        let words = ["env", "DEBIAN_FRONTEND=noninteractive"] + argv
            + ["-y", "-o", "APT::Get::Download=false", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
        return words.map(ShellProtocol.shellQuote).joined(separator: " ")
    }

    public var description: String { argv.joined(separator: " ") }
}
