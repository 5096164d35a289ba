import Foundation

/// `rehearse host capture`: the running system (or a tree standing in for
/// it) as a generation, so that an upgrade can be rehearsed on the host's
/// own files rather than on a system a recipe built.
///
/// The copy is a mirror kept under `<state>/host/NAME/tree`, refreshed with
/// rsync, so that a second capture copies only what changed. Its digest is
/// that of a file manifest (path, type, mode, owner, size, modification
/// time, link target), not of the disk's bytes, so an unchanged host gives
/// the same generation, which is then reused without building a disk.
/// Only the copy is adapted for the VM (`HostAdaptation`); the host is read,
/// never written: dpkg's locks are held while it is read, so that no package
/// operation changes it halfway.
public struct HostCapture: Sendable {
    /// The generation's name.
    public var name = "host"
    /// The tree to capture: `/` for the running system.
    public var root = "/"
    /// More to leave out, as rsync patterns (`/srv/big`, `*.iso`); a leading `/` anchors at the root.
    public var excludes: [String] = []
    /// For a tree with no kernel of its own: boot it directly with this generation's kernel and initrd.
    public var kernelFrom: Generation?

    public init() {}

    /// What the capture reports as it goes.
    public enum Event: Sendable {
        /// Before copying: what is left out, and how much there is to copy.
        case plan(CapturePlan)
        /// rsync's overall progress, in percent.
        case copying(percent: Int)
        case step(String)
    }

    public struct Result: Sendable {
        public var generation: Generation
        /// The unchanged host's generation was found and used again.
        public var reused: Bool
        public var plan: CapturePlan
        /// Seconds spent copying and building the disk.
        public var copySeconds: Double
        public var diskSeconds: Double
    }

    /// Copies, digests and, unless its generation exists already, builds the disk.
    public func run(state: StateDirectory, onEvent: @escaping @Sendable (Event) -> Void = { _ in }) throws -> Result {
        let fm = FileManager.default
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: rootURL.path, isDirectory: &isDir), isDir.boolValue else {
            throw RehearsalError(.badHost, "\(root): no such directory to capture")
        }
        guard Self.validName(name) else {
            throw RehearsalError(.badHost, "`\(name)` can't name a capture: use letters, digits, `-`, `_` and `.`")
        }
        // Refused before anything is copied or made: a tree that is not a systemd system, or has no kernel to boot.
        _ = try HostDisk(name: name, root: rootURL.path, mirror: rootURL, manifestDigest: "", kernelFrom: kernelFrom).identity()
        let home = try state.create(state.hostCaptures.appendingPathComponent(name))
        // The copy holds the host's secrets (/etc/shadow, SSH host keys): its owner's alone.
        chmod(state.hostCaptures.path, 0o700)
        chmod(home.path, 0o700)
        guard let lock = try FileLock(path: home.path + ".lock", wait: false) else {
            throw RehearsalError(.hostBusy, "another capture of `\(name)` is running (\(home.path).lock)")
        }
        defer { lock.unlock() }
        let dpkg = try DpkgLock(root: rootURL.path)
        defer { dpkg.release() }

        let plan = try CapturePlan.make(root: rootURL.path, excludes: excludes, state: state, mounts: try MountTable.current())
        let mirror = home.appendingPathComponent("tree")
        try state.create(mirror)
        chmod(mirror.path, 0o755)
        let copyClock = ContinuousClock.now
        let sized = try plan.measure(into: mirror.path)
        onEvent(.plan(sized))
        try sized.copy(into: mirror.path) { onEvent(.copying(percent: $0)) }
        onEvent(.step("digest the copy's file manifest"))
        let manifest = try Self.manifestDigest(of: mirror.path)
        let copySeconds = Self.seconds(since: copyClock)
        dpkg.release()

        let disk = HostDisk(name: name, root: rootURL.path, mirror: mirror, manifestDigest: manifest, kernelFrom: kernelFrom)
        let identity = try disk.identity()
        if let existing = Self.existing(in: home, digest: identity.digest) {
            try Self.markLatest(existing, in: home)
            return Result(generation: existing, reused: true, plan: sized, copySeconds: copySeconds, diskSeconds: 0)
        }
        let diskClock = ContinuousClock.now
        let generation = try disk.build(identity: identity, into: home) { onEvent(.step($0)) }
        try Self.markLatest(generation, in: home)
        return Result(generation: generation, reused: false, plan: sized, copySeconds: copySeconds, diskSeconds: Self.seconds(since: diskClock))
    }

    /// The newest capture called `name`.
    public static func latest(_ name: String, state: StateDirectory) -> Generation? {
        guard validName(name) else { return nil }
        let home = state.hostCaptures.appendingPathComponent(name)
        guard let short = try? String(contentsOf: home.appendingPathComponent("latest"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines),
              !short.isEmpty, !short.contains("/") else { return nil }
        return (try? GenerationStore.load(directory: home.appendingPathComponent(short)))?.generations.first
    }

    /// The build the name stands for now (an unchanged host's older build, when reused).
    static func markLatest(_ g: Generation, in home: URL) throws {
        let tmp = home.appendingPathComponent(".latest-\(getpid())")
        try Data((g.shortDigest + "\n").utf8).write(to: tmp)
        guard rename(tmp.path, home.appendingPathComponent("latest").path) == 0 else {
            let why = String(cString: strerror(errno))
            try? FileManager.default.removeItem(at: tmp)
            throw RehearsalError.infrastructure("can't record \(home.path)/latest: \(why)")
        }
    }

    /// The build under `home` whose generation has `digest`, if one is complete.
    static func existing(in home: URL, digest: String) -> Generation? {
        let dir = home.appendingPathComponent(String(digest.prefix(12)))
        return (try? GenerationStore.load(directory: dir))?.generations.first { $0.digest == digest }
    }

    /// SHA-256 over the sorted manifest of `tree`: one record per file of its
    /// relative path, type, mode, owner, group, size, modification time and
    /// link target (a directory: its path, mode and owner). Access and change
    /// times are left out: reading a file or copying it again must not change the digest.
    static func manifestDigest(of tree: String) throws -> String {
        // A directory's size and time change with its entries, which are
        // in the manifest anyway; and a mount point or /tmp, whose contents
        // are left out, changes them all the time.
        let script = "cd \"$1\" && find . \\( -type d -printf '%P\\t%y\\t%#m\\t%U\\t%G\\0' \\) -o -printf '%P\\t%y\\t%#m\\t%U\\t%G\\t%s\\t%T@\\t%l\\0' | LC_ALL=C sort -z | sha256sum"
        let out = try HostCommand.run(["sh", "-c", script, "sh", tree])
        guard let sum = out.split(separator: " ").first, sum.count == 64 else {
            throw RehearsalError.infrastructure("the manifest of \(tree) gave no digest: \(out)")
        }
        return String(sum)
    }

    static func validName(_ s: String) -> Bool {
        !s.isEmpty && !s.hasPrefix(".") && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}

extension StateDirectory {
    /// Captures of hosts (`rehearse host capture`): a mirror and its builds per name. Never shared.
    public var hostCaptures: URL { root.appendingPathComponent("host") }
}

extension RehearsalError.Code {
    /// A tree to capture that can't be (missing, not a systemd system, no kernel to boot it with).
    public static let badHost = RehearsalError.Code("bad host", .badInput)
    /// The host is in the middle of something (dpkg runs, another capture of the same name).
    public static let hostBusy = RehearsalError.Code("host busy", .infrastructure)
}
