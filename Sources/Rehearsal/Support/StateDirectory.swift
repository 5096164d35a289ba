import Foundation

/// Where Rehearsal keeps what outlives a run: built images, libvirt's embedded
/// roots, run directories and the download cache.
///
/// `$REHEARSE_STATE_DIR`, else `$XDG_STATE_HOME/rehearse`, else `~/.local/state/rehearse`.
public struct StateDirectory: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> StateDirectory {
        if let d = env["REHEARSE_STATE_DIR"], !d.isEmpty { return StateDirectory(root: URL(fileURLWithPath: d)) }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty { return StateDirectory(root: URL(fileURLWithPath: x).appendingPathComponent("rehearse")) }
        let home = env["HOME"] ?? NSHomeDirectory()
        return StateDirectory(root: URL(fileURLWithPath: home).appendingPathComponent(".local/state/rehearse"))
    }

    public var images: URL { root.appendingPathComponent("images") }
    public var embedRoots: URL { root.appendingPathComponent("libvirt") }
    public var runs: URL { root.appendingPathComponent("runs") }
    public var downloads: URL { root.appendingPathComponent("downloads") }

    public func create(_ url: URL) throws -> URL {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
