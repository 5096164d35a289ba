import Foundation
import Libvirt

/// Finds and removes what killed runs left behind: our domains (tagged in
/// their metadata) and QEMU processes of our embedded roots. It touches
/// nothing that isn't ours, and nothing a live rehearse process still owns.
public enum Janitor {
    public struct Removed: Sendable, CustomStringConvertible {
        public var what: String
        public var detail: String
        public var description: String { "\(what): \(detail)" }
    }

    /// Destroys our domains on `connection` whose owning process is gone.
    /// With `ownedByDeadOnly` false (we hold the embedded root's lock, so no
    /// live process can own them) every tagged domain goes.
    public static func sweep(_ connection: Connection, ownedByDeadOnly: Bool) throws -> [Removed] {
        var removed: [Removed] = []
        for d in try connection.allDomains() {
            guard let meta = try? d.metadataElement(namespace: DomainXML.namespace) else { continue }
            if ownedByDeadOnly, !ownerIsDead(meta) { continue }
            let run = attribute("run", in: meta) ?? "?"
            try d.destroy()
            removed.append(Removed(what: "domain", detail: "\(d.name) (run \(run))"))
        }
        return removed
    }

    /// The embedded roots of the pool that exist, split into those a live
    /// process holds and those free to sweep.
    ///
    /// A process can open only one embedded root for its whole life (libvirt
    /// keeps the embedded driver loaded), so each free root is swept by its
    /// own process: `sweepEmbeddedRoot(_:)`, reached through `rehearse clean
    /// --embedded-root DIR`.
    public static func embeddedRoots(state: StateDirectory) -> (free: [URL], busy: [URL]) {
        var free: [URL] = [], busy: [URL] = []
        for i in 0..<Hypervisor.poolSize {
            let dir = state.embedRoots.appendingPathComponent("root-\(i)")
            guard FileManager.default.fileExists(atPath: dir.path) else { continue }
            if FileLock.isHeld(path: dir.path + ".lock") { busy.append(dir) } else { free.append(dir) }
        }
        return (free, busy)
    }

    /// Sweeps one embedded root that no live process holds: our domains
    /// through libvirt, then QEMU processes of that root libvirt lost.
    /// Returns nil when a live process holds the root after all.
    public static func sweepEmbeddedRoot(_ dir: URL) throws -> [Removed]? {
        guard let lock = try FileLock(path: dir.path + ".lock", wait: false) else { return nil }
        defer { lock.unlock() }
        try Hypervisor.prepareEmbeddedRoot(dir)
        var removed: [Removed] = []
        let connection = try Connection(uri: "qemu:///embed?root=\(dir.path)")
        removed += try sweep(connection, ownedByDeadOnly: false)
        connection.close()
        removed += killStrayQEMU(root: dir)
        return removed
    }

    /// QEMU processes started from `root` (their command line names it) that
    /// are still running although nobody holds the root.
    static func killStrayQEMU(root: URL) -> [Removed] {
        var removed: [Removed] = []
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for p in procs {
            guard let pid = Int32(p),
                  let data = FileManager.default.contents(atPath: "/proc/\(p)/cmdline") else { continue }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard let exe = argv.first, exe.contains("qemu-system"),
                  argv.contains(where: { $0.contains(root.path + "/") }) else { continue }
            kill(pid, SIGKILL)
            removed.append(Removed(what: "QEMU process", detail: "pid \(pid)"))
        }
        return removed
    }

    /// Whether our metadata element names an owner known to be dead. An owner
    /// we can't judge (another host, missing attributes) counts as alive:
    /// better a leftover domain than a live run's machine destroyed.
    static func ownerIsDead(_ metadata: String, liveness: (Owner) -> Owner.Liveness = { $0.liveness() }) -> Bool {
        guard let owner = Owner(attribute: { attribute($0, in: metadata) }) else { return false }
        return liveness(owner) == .dead
    }

    /// An attribute of the metadata element, quoted either way (libvirt
    /// writes it back with double quotes). The leading space keeps `pid`
    /// from matching the end of another attribute's name.
    static func attribute(_ name: String, in xml: String) -> String? {
        for quote in ["\"", "'"] {
            guard let r = xml.range(of: " \(name)=\(quote)"),
                  let end = xml[r.upperBound...].firstIndex(of: Character(quote)) else { continue }
            return String(xml[r.upperBound..<end])
        }
        return nil
    }
}
