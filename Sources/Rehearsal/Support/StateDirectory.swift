import Foundation

/// Where Rehearsal keeps what outlives a run: built images, libvirt's embedded
/// roots, run directories and the download cache.
///
/// `$REHEARSE_STATE_DIR`, else `$XDG_STATE_HOME/rehearse`, else `~/.local/state/rehearse`.
/// Built images may live elsewhere (`$REHEARSE_IMAGE_CACHE`): they are a cache
/// that several state directories can share (the test suite's private state
/// directory shares the user's images, and nothing else).
public struct StateDirectory: Sendable {
    public let root: URL
    /// Built images: `<root>/images` unless given.
    public let images: URL

    public init(root: URL, images: URL? = nil) {
        self.root = root
        self.images = images ?? root.appendingPathComponent("images")
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> StateDirectory {
        let images = env["REHEARSE_IMAGE_CACHE"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
        if let d = env["REHEARSE_STATE_DIR"], !d.isEmpty { return StateDirectory(root: URL(fileURLWithPath: d), images: images) }
        if let x = env["XDG_STATE_HOME"], !x.isEmpty {
            return StateDirectory(root: URL(fileURLWithPath: x).appendingPathComponent("rehearse"), images: images)
        }
        let home = env["HOME"] ?? NSHomeDirectory()
        return StateDirectory(root: URL(fileURLWithPath: home).appendingPathComponent(".local/state/rehearse"), images: images)
    }

    public var embedRoots: URL { root.appendingPathComponent("libvirt") }
    public var runs: URL { root.appendingPathComponent("runs") }
    public var downloads: URL { root.appendingPathComponent("downloads") }

    public func create(_ url: URL) throws -> URL {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
