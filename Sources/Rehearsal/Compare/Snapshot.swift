import Foundation

/// What the built-in probes saw on one booted generation. Everything that
/// changes with every boot is normalised away (see `Probes.normalised`), so
/// two boots of the same generation give equal snapshots.
public struct Snapshot: Codable, Sendable, Equatable {
    public var osRelease: [String: String] = [:]
    public var kernel: String?
    /// Package manager → name → version.
    public var packages: [String: [String: String]] = [:]
    /// Unit name → its state.
    public var units: [String: UnitState] = [:]
    /// Listening sockets, as "tcp 127.0.0.1:8080 rehearse-demo".
    public var ports: Set<String> = []
    /// Path → SHA-256 for regular files under /etc.
    public var etc: [String: String] = [:]
    /// systemd's own boot phases in seconds (kernel, initrd, userspace), when it reports them.
    public var bootPhases: [String: Double] = [:]
    public var rootUsedBytes: Int64?
    public var rootSizeBytes: Int64?
    /// Probes that could not run on this guest, with why.
    public var skipped: [String] = []
    /// Seconds the probes took.
    public var probeSeconds: Double = 0

    public init() {}

    public static func == (a: Snapshot, b: Snapshot) -> Bool {
        a.osRelease == b.osRelease && a.kernel == b.kernel && a.packages == b.packages && a.units == b.units
            && a.ports == b.ports && a.etc == b.etc && a.rootUsedBytes == b.rootUsedBytes && a.skipped == b.skipped
    }
}

public struct UnitState: Codable, Sendable, Equatable {
    /// active, inactive, failed, activating …
    public var active: String
    /// enabled, disabled, static, masked … (nil when systemd doesn't say).
    public var enabled: String?

    public init(active: String, enabled: String? = nil) {
        self.active = active
        self.enabled = enabled
    }
}
