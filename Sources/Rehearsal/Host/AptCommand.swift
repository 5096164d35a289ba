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
        guard let action = argv.dropFirst().first(where: { !$0.hasPrefix("-") }), Self.actions.contains(action) else {
            throw RehearsalError(.badHost, "`\(argv.joined(separator: " "))` changes no packages APT can fetch first: \(supported)")
        }
        self.argv = argv
        self.action = action
    }

    /// Its arguments after the tool's name.
    var arguments: [String] { Array(argv.dropFirst()) }

    /// On the host: the same request in APT's download-only mode (apt-get,
    /// whose interface is stable for scripts), answering yes, with no
    /// progress meter.
    var downloadArgv: [String] { ["apt-get"] + arguments + ["--download-only", "--yes", "--quiet"] }

    /// In the guest: the command as given, never downloading (what the host
    /// fetched is in the archive cache; anything else fails as APT says),
    /// with no one to answer debconf's questions.
    var guestCommand: String {
        let words = ["env", "DEBIAN_FRONTEND=noninteractive"] + argv + ["-o", "APT::Get::Download=false"]
        return words.map(ShellProtocol.shellQuote).joined(separator: " ")
    }

    public var description: String { argv.joined(separator: " ") }
}
