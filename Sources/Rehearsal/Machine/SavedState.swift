import Foundation
import Libvirt
import Synchronization

/// A running machine kept for warm starts: the guest's memory and device
/// state (libvirt's save image) and the disk state under it (the frozen
/// overlay it was writing to), made the first time a machine of its identity
/// was ready, and never written after.
///
/// Lives in `<state>/saved/<id>/`: `state.save`, `disk.qcow2` (backed by the
/// generation's base disk) and `record.json`, this record. Every later
/// machine of the same identity restores it with its own fresh overlay over
/// `disk.qcow2`, so no scenario sees what another wrote.
public struct SavedState: Sendable, Codable {
    /// The identity digest (see `SavedStateStore.identity`).
    public var id: String
    public var generation: String
    public var generationDigest: String
    public var memoryMiB: Int
    public var cpus: Int
    public var createdAt: Date
    /// Seconds the cold boot it was made from took to a ready shell.
    public var coldBootSeconds: Double
    public var stateBytes: Int64
    public var stateDigest: String
    public var diskBytes: Int64?
    public var diskDigest: String?
    /// Shared by every clone (a restore is not a boot): recorded, not made unique.
    public var bootID: String?
    public var machineID: String?
    /// The paths the saved XML names, by role (`overlay`, `payload`): a clone's XML names its own files instead.
    public var paths: [String: String]
    /// What went into the identity, for people.
    public var inputs: [String]

    /// Its directory (not stored: where it was found).
    public var directory: URL { URL(fileURLWithPath: _directory ?? "") }
    var _directory: String?
    enum CodingKeys: String, CodingKey {
        case id, generation, generationDigest, memoryMiB, cpus, createdAt, coldBootSeconds, stateBytes, stateDigest,
             diskBytes, diskDigest, bootID, machineID, paths, inputs
    }

    public var stateFile: URL { directory.appendingPathComponent("state.save") }
    public var disk: URL { directory.appendingPathComponent("disk.qcow2") }
    /// The console of the boot it was made from, which a restored machine's console begins with.
    public var console: URL { directory.appendingPathComponent("console.txt") }
    public var totalBytes: Int64 { stateBytes + (diskBytes ?? 0) }
}

/// The saved states of a state directory: found by identity, made once
/// (a lock per identity), checked before use, listed, pruned, removed.
public struct SavedStateStore: Sendable {
    public let root: URL
    /// The total size kept; the oldest states go first beyond it.
    public var maxBytes: Int64

    /// Bumped whenever what a saved machine holds changes shape (the shell
    /// protocol, the metadata, how a restore is finished).
    static let format = "1"

    public init(root: URL, maxBytes: Int64 = 8 << 30) {
        self.root = root
        self.maxBytes = maxBytes
    }

    public init(state: StateDirectory) {
        let gib = ProcessInfo.processInfo.environment["REHEARSE_SAVED_STATES_GIB"].flatMap(Double.init) ?? 8
        self.init(root: state.root.appendingPathComponent("saved"), maxBytes: Int64(gib * Double(1 << 30)))
    }

    /// The identity of a machine: a digest of everything that shapes it
    /// running — its domain XML with run-specific names and paths left out
    /// (memory, CPUs, accelerator, kernel and command line, devices, consoles),
    /// the generation's digest, the content of every disk attached at boot
    /// other than its own overlay, libvirt's and QEMU's versions, and the
    /// harness (shell protocol and this format). Returns the digest and its inputs.
    static func identity(xml: String, generation: Generation, diskDigests: [String], versions: (library: UInt, hypervisor: UInt),
                         host: [String] = []) -> (id: String, inputs: [String]) {
        let inputs = host + [
            "format \(format)",
            "generation \(generation.name) \(generation.digest)",
            "libvirt \(versions.library) qemu \(versions.hypervisor)",
            "shell protocol \(SHA256.hex(Data(ShellProtocol.bootstrap.utf8)).prefix(16))",
        ] + diskDigests.map { "disk \($0)" } + ["domain xml \(SHA256.hex(Data(xml.utf8)).prefix(16))"]
        return (String(SHA256.hex(Data(inputs.joined(separator: "\n").utf8)).prefix(24)), inputs)
    }

    /// A file's BLAKE2b digest (`b2sum`: three times as fast as sha256sum here, and saved states are hundreds of MB).
    static func digest(_ path: String) throws -> String {
        do { return String(try HostCommand.run(["b2sum", path]).prefix(128)) } catch {
            throw RehearsalError.infrastructure("cannot read \(path): \(error)")
        }
    }

    func directory(_ id: String) -> URL { root.appendingPathComponent(id) }

    /// The saved state `id`, if one is complete; nil when there is none.
    /// Throws (with why) when one is there but damaged: the caller boots cold.
    /// `again` reads the digests even if this process checked them before.
    func find(_ id: String, again: Bool = false) throws -> SavedState? {
        let dir = directory(id)
        let recordFile = dir.appendingPathComponent("record.json")
        guard let data = try? Data(contentsOf: recordFile) else { return nil }
        guard var s = try? JSONCoding.decoder.decode(SavedState.self, from: data) else {
            throw RehearsalError.infrastructure("the saved state \(id) has an unreadable record")
        }
        s._directory = dir.path
        let size = { (u: URL) in (try? FileManager.default.attributesOfItem(atPath: u.path)[.size] as? Int64) ?? nil }
        guard size(s.stateFile) == s.stateBytes else {
            throw RehearsalError.infrastructure("the saved state \(id) is damaged: state.save is \(size(s.stateFile).map { "\($0)" } ?? "missing") bytes, not \(s.stateBytes)")
        }
        if let d = s.diskBytes, size(s.disk) != d {
            throw RehearsalError.infrastructure("the saved state \(id) is damaged: disk.qcow2 is not \(d) bytes")
        }
        if again { try Verified.digests(s) } else { try Self.verified.check(s) }
        return s
    }

    /// Reads state `id` in full again (sizes and digests, whatever this
    /// process checked before): nil when it is intact, else what is wrong.
    public func verify(_ id: String) -> String? {
        do {
            return try find(id, again: true) == nil ? "the saved state \(id) is gone or incomplete" : nil
        } catch {
            return "\(error)"
        }
    }

    /// Digests are read once per process and file version (hundreds of MB
    /// each time would eat much of what a restore saves); size checks happen
    /// on every use. A file version is its inode and change time, which
    /// nothing but a change to the file moves.
    private static let verified = Verified()
    private final class Verified: Sendable {
        private let seen = Mutex<Set<String>>([])
        static func version(_ s: SavedState) -> String {
            [s.stateFile, s.disk].map { u -> String in
                var st = stat()
                guard stat(u.path, &st) == 0 else { return "-" }
                return "\(st.st_ino).\(st.st_ctim.tv_sec).\(st.st_ctim.tv_nsec)"
            }.joined(separator: " ") + " " + s.stateDigest
        }
        func check(_ s: SavedState) throws {
            let key = Self.version(s)
            if seen.withLock({ $0.contains(key) }) { return }
            try Self.digests(s)
            remember(s)
        }
        static func digests(_ s: SavedState) throws {
            guard try SavedStateStore.digest(s.stateFile.path) == s.stateDigest else {
                throw RehearsalError.infrastructure("the saved state \(s.id) is damaged: state.save does not match its digest")
            }
            if let d = s.diskDigest, try SavedStateStore.digest(s.disk.path) != d {
                throw RehearsalError.infrastructure("the saved state \(s.id) is damaged: disk.qcow2 does not match its digest")
            }
        }
        /// A state this process just made and digested.
        func remember(_ s: SavedState) { seen.withLock { _ = $0.insert(Self.version(s)) } }
    }

    /// Holds state `id` in use (a shared lock): it is not removed meanwhile.
    /// nil when it is being made or removed right now.
    func lockForUse(_ id: String) -> FileLock? {
        try? FileLock(path: directory(id).path + ".lock", wait: false, shared: true)
    }

    /// Takes the right to make state `id`, or nil when another machine is making it now.
    func lockForMaking(_ id: String) throws -> FileLock? {
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return try FileLock(path: directory(id).path + ".lock", wait: false)
    }

    /// Makes state `id` from a stopped machine's files: `stateFile` (its save
    /// image) and `overlay` (its disk's active file), both moved in. Written
    /// to a temporary directory and renamed into place, so a state is complete or absent.
    func commit(_ record: SavedState, stateFile: URL, overlay: URL?, console: [String]) throws -> SavedState {
        let fm = FileManager.default
        let final = directory(record.id)
        let temp = root.appendingPathComponent(".\(record.id).\(getpid()).partial")
        try? fm.removeItem(at: temp)
        try fm.createDirectory(at: temp, withIntermediateDirectories: true)
        do {
            var r = record
            try Self.move(stateFile, to: temp.appendingPathComponent("state.save"))
            r.stateDigest = try SavedStateStore.digest(temp.appendingPathComponent("state.save").path)
            if let overlay {
                let disk = temp.appendingPathComponent("disk.qcow2")
                try Self.move(overlay, to: disk)
                r.diskBytes = (try fm.attributesOfItem(atPath: disk.path)[.size] as? Int64) ?? 0
                r.diskDigest = try SavedStateStore.digest(disk.path)
            }
            try (console.joined(separator: "\n") + "\n").write(to: temp.appendingPathComponent("console.txt"), atomically: false, encoding: .utf8)
            try JSONCoding.encoder.encode(r).write(to: temp.appendingPathComponent("record.json"))
            // Never written after it is made.
            for f in try fm.contentsOfDirectory(atPath: temp.path) {
                try fm.setAttributes([.posixPermissions: 0o444], ofItemAtPath: temp.appendingPathComponent(f).path)
            }
            try? fm.removeItem(at: final)
            try fm.moveItem(at: temp, to: final)
            r._directory = final.path
            Self.verified.remember(r)
            prune(keeping: r.id)
            return r
        } catch {
            // The machine's disk goes back where it was: the machine goes on with it.
            let disk = temp.appendingPathComponent("disk.qcow2")
            if let overlay, fm.fileExists(atPath: disk.path), !fm.fileExists(atPath: overlay.path) {
                try? fm.setAttributes([.posixPermissions: 0o644], ofItemAtPath: disk.path)
                try? Self.move(disk, to: overlay)
            }
            Self.removeTree(temp)
            throw RehearsalError.infrastructure("keeping the saved state failed: \(error)")
        }
    }

    static func move(_ from: URL, to: URL) throws {
        do { try FileManager.default.moveItem(at: from, to: to) } catch {
            // Across file systems (a run directory elsewhere): copy, then remove.
            try FileManager.default.copyItem(at: from, to: to)
            try FileManager.default.removeItem(at: from)
        }
    }

    /// Every complete saved state, newest first.
    public func list() -> [SavedState] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }.compactMap { name -> SavedState? in
            let dir = directory(name)
            guard let data = try? Data(contentsOf: dir.appendingPathComponent("record.json")),
                  var s = try? JSONCoding.decoder.decode(SavedState.self, from: data) else { return nil }
            s._directory = dir.path
            return s
        }.sorted { $0.createdAt > $1.createdAt }
    }

    /// Removes state `id` unless a machine uses it or makes it right now; returns whether it did.
    @discardableResult
    public func remove(_ id: String) -> Bool {
        let dir = directory(id)
        guard let lock = try? FileLock(path: dir.path + ".lock", wait: false) else { return false }
        defer { lock.unlock() }
        Self.removeTree(dir)
        // The lock file stays: removing it under a lock others may be opening would split the lock in two.
        return !FileManager.default.fileExists(atPath: dir.path)
    }

    /// Removes every saved state not in use; returns how many went and their bytes.
    @discardableResult
    public func removeAll() -> (count: Int, bytes: Int64) {
        let removed = list().filter { remove($0.id) }
        // Partial ones a killed process left.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] where name.hasSuffix(".partial") {
            // `.ID.PID.partial`: only when no machine is making ID now.
            let id = name.dropFirst().split(separator: ".").first.map(String.init) ?? ""
            guard let lock = try? FileLock(path: directory(id).path + ".lock", wait: false) else { continue }
            Self.removeTree(root.appendingPathComponent(name))
            lock.unlock()
        }
        return (removed.count, removed.reduce(0) { $0 + $1.totalBytes })
    }

    /// Keeps the total under `maxBytes`: the oldest go first (never `keeping`).
    func prune(keeping: String) {
        var total: Int64 = 0
        for s in list() {
            total += s.totalBytes
            if total > maxBytes, s.id != keeping { remove(s.id) }
        }
    }

    static func removeTree(_ dir: URL) {
        // The files are read-only; the directory is ours.
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dir.path)
        try? FileManager.default.removeItem(at: dir)
    }
}
