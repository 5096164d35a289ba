import Foundation

/// The evidence of one scenario's run in one archive, and what it takes to
/// run it again: `bundle.tar.gz` in the run directory, written for every
/// scenario that failed (every scenario with `--bundle`), read by
/// `rehearse replay`.
///
///     bundle.json      what ran: the scenario, its machine settings, the digest of
///                      every generation it booted and of its payload, the host's facts
///     scenario.yaml    the scenario file as it ran
///     payload/         a payload given as a directory (when it is at most 64 MiB)
///     run/             the run directory: console.log, channel.log, channel-trace.log
///                      (both directions, timed), domain.xml, result.json, journals, diagnostics
///
/// No disk, overlay or saved state goes in, nor anything of the host's but
/// its libvirt, QEMU and kernel versions: what is inside is what the guest
/// printed and what the scenario says.
public struct Bundle: Codable, Sendable {
    public static let fileName = "bundle.tar.gz"
    static let payloadLimit: Int64 = 64 << 20

    public var format = 1
    /// The Rehearsal that made it.
    public var rehearsal = Version.rehearsal
    public var scenario: String
    /// Where the scenario file was: relative paths in it resolve from there.
    public var file: String
    public var outcome: Outcome
    public var message: String?
    /// The machine settings as resolved (memory, CPUs, payload, system files…).
    public var machine: [String: String]
    /// Every generation booted, by name, with its digest.
    public var generations: [Pin]
    /// The payload directory's digest (see `treeDigest`), and whether a copy is inside.
    public var payload: Pin?
    public var payloadIncluded = false
    public var host: Host
    public var createdAt = Date()

    public struct Pin: Codable, Sendable, Equatable {
        public var name: String
        public var digest: String
    }

    public struct Host: Codable, Sendable {
        public var libvirt: String
        public var qemu: String
        public var accelerator: String
        public var uri: String
        public var kernel: String
    }

    /// Writes `<runDirectory>/bundle.tar.gz` for `result` (its run directory
    /// complete: machines destroyed, result.json written). Returns its path.
    static func write(_ bundle: Bundle, scenarioFile: String, payload: URL?, runDirectory dir: URL) throws -> URL {
        let fm = FileManager.default
        let staging = dir.appendingPathComponent(".bundle")
        try? fm.removeItem(at: staging)
        defer { try? fm.removeItem(at: staging) }
        let run = staging.appendingPathComponent("run")
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        var b = bundle
        if scenarioFile.hasSuffix(".yaml") || scenarioFile.hasSuffix(".yml"), let text = fm.contents(atPath: scenarioFile) {
            try text.write(to: staging.appendingPathComponent("scenario.yaml"))
        }
        // Evidence only: no disk, overlay, save image or socket.
        // The Ignition config may hold password hashes and keys: it stays where the scenario names it.
        let big = [".qcow2", ".img", ".raw", ".save", ".partial", ".sock", fileName, ".ign", "ignition.json"]
        for rel in fm.enumerator(atPath: dir.path)?.compactMap({ $0 as? String }) ?? [] where !rel.hasPrefix(".bundle") {
            let from = dir.appendingPathComponent(rel)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: from.path, isDirectory: &isDir) else { continue }
            let to = run.appendingPathComponent(rel)
            if isDir.boolValue { try fm.createDirectory(at: to, withIntermediateDirectories: true); continue }
            guard !big.contains(where: { rel.hasSuffix($0) }),
                  (try? fm.attributesOfItem(atPath: from.path)[.type] as? FileAttributeType) == .typeRegular else { continue }
            try fm.copyItem(at: from, to: to)
        }
        // A payload directory is the scenario's own file; a recipe's payload is found by digest.
        if let payload, b.machine["payload"]?.hasPrefix("directory ") == true, Self.size(of: payload) <= payloadLimit {
            try fm.copyItem(at: payload, to: staging.appendingPathComponent("payload"))
            b.payloadIncluded = true
        }
        try JSONCoding.encoder.encode(b).write(to: staging.appendingPathComponent("bundle.json"))
        let out = dir.appendingPathComponent(fileName), partial = dir.appendingPathComponent(fileName + ".partial")
        do {
            try HostCommand.run(["tar", "-czf", partial.path, "-C", staging.path, "."])
            try? fm.removeItem(at: out)
            try fm.moveItem(at: partial, to: out)
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
        return out
    }

    /// The bytes of the regular files under `dir`.
    static func size(of dir: URL) -> Int64 {
        let fm = FileManager.default
        return (fm.enumerator(atPath: dir.path)?.compactMap { $0 as? String } ?? []).reduce(0) { sum, rel in
            sum + ((try? fm.attributesOfItem(atPath: dir.appendingPathComponent(rel).path)[.size] as? Int64) ?? 0)
        }
    }

    /// A digest of a directory tree's names, modes, link targets and bytes
    /// (a tar stream in name order with times and owners left out), so
    /// that the same files give the same digest wherever they are.
    public static func treeDigest(_ dir: URL) throws -> String {
        // tar's warnings go nowhere: only sha256sum's line may reach the output.
        let script = "set -o pipefail; tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf - -C \"$1\" . 2>/dev/null | sha256sum"
        let out: String
        do { out = try HostCommand.run(["bash", "-c", script, "tree-digest", dir.path]) } catch {
            throw RehearsalError.infrastructure("cannot read the payload \(dir.path): \(error)")
        }
        let digest = String(out.prefix(64))
        guard digest.count == 64, digest.allSatisfy(\.isHexDigit) else { throw RehearsalError.infrastructure("cannot digest the payload \(dir.path): \(out)") }
        return digest
    }
}
