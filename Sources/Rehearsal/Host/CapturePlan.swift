import Foundation

/// What a capture copies: the tree at `root` minus what is left out, and,
/// once measured, how much that is.
public struct CapturePlan: Sendable {
    public struct LeftOut: Sendable, Equatable {
        /// An rsync pattern, anchored at the root when it starts with `/`.
        public var pattern: String
        public var why: String
    }

    public var root: String
    public var leftOut: [LeftOut]
    /// From rsync's dry run: files and bytes in the copy, and bytes it has to transfer now.
    public var files = 0
    public var bytes: Int64 = 0
    public var bytesToCopy: Int64 = 0

    /// Always left out, whatever the host: scratch space and caches that
    /// are rebuilt on demand. (debconf's database lives in /var/cache and stays.)
    static let scratch: [LeftOut] = [
        LeftOut(pattern: "/tmp/*", why: "scratch"), LeftOut(pattern: "/var/tmp/*", why: "scratch"),
        LeftOut(pattern: "/var/cache/apt/archives/*.deb", why: "cache"), LeftOut(pattern: "/var/cache/apt/*.bin", why: "cache"),
        LeftOut(pattern: "/root/.cache/*", why: "cache"), LeftOut(pattern: "/home/*/.cache/*", why: "cache"),
        LeftOut(pattern: "/var/lib/libvirt/images/*", why: "VM disk images"), LeftOut(pattern: "*.qcow2", why: "VM disk images"),
        LeftOut(pattern: "/lost+found/*", why: "the filesystem's own"),
    ]

    /// The plan for `root`: the scratch list, every mount below it that is
    /// not a local disk filesystem, active swap files, Rehearsal's own state
    /// and image cache when they are inside the tree, and `excludes`.
    public static func make(root: String, excludes: [String], state: StateDirectory, mounts: MountTable,
                            swaps: String = (try? String(contentsOfFile: "/proc/swaps", encoding: .utf8)) ?? "") throws -> CapturePlan {
        var out = scratch
        // A mount point is a path, not a pattern: rsync's wildcard characters in it are escaped.
        func escape(_ s: String) -> String { s.map { "[*?\\".contains($0) ? "\\\($0)" : String($0) }.joined() }
        for m in mounts.leftOut(under: root) where !out.contains(where: { $0.pattern == escape(m.point) + "/*" }) {
            out.append(LeftOut(pattern: escape(m.point) + "/*", why: "\(m.type) mount"))
        }
        func inside(_ path: String) -> String? {
            // Resolved: a state directory reached through a link must still be left out of the copy.
            let p = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            if root == "/" { return p }
            return p.hasPrefix(root + "/") ? String(p.dropFirst(root.count)) : nil
        }
        for line in swaps.split(separator: "\n").dropFirst() {
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if f.count > 1, f[1] == "file", let rel = inside(MountTable.unescape(String(f[0]))) {
                out.append(LeftOut(pattern: escape(rel), why: "swap file"))
            }
        }
        for dir in [state.root.path, state.images.path] {
            if let rel = inside(dir).map(escape), !out.contains(where: { $0.pattern == rel }) {
                out.append(LeftOut(pattern: rel, why: "Rehearsal's state"))
            }
        }
        for e in excludes {
            guard !e.isEmpty else { throw RehearsalError(.badHost, "--exclude needs a pattern (an empty one would match nothing)") }
            out.append(LeftOut(pattern: e, why: "--exclude"))
        }
        return CapturePlan(root: root, leftOut: out)
    }

    /// rsync as a capture runs it: archive mode with hard links, ACLs,
    /// extended attributes and holes kept, numeric owners (the host's
    /// accounts, not ours), and whatever the mirror has that the host no
    /// longer has removed. Files are read without touching their access time.
    func rsync(_ extra: [String], into mirror: String) -> [String] {
        ["rsync", "-aHAXS", "--numeric-ids", "--delete", "--delete-excluded", "--open-noatime"]
            + leftOut.flatMap { ["--exclude", $0.pattern] } + extra
            + [root.hasSuffix("/") ? root : root + "/", mirror + "/"]
    }

    /// The plan with its sizes, from a dry run.
    func measure(into mirror: String) throws -> CapturePlan {
        let out: String
        do { out = try HostCommand.run(rsync(["--dry-run", "--stats"], into: mirror), timeout: 3600) }
        catch { throw RehearsalError.infrastructure("measuring the capture of \(root) failed: \(error)") }
        var p = self
        func number(after label: String) -> Int64? {
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix(label) }) else { return nil }
            let digits = line.dropFirst(label.count).drop { $0 == " " }.prefix { $0.isNumber || $0 == "," }
            return Int64(digits.filter(\.isNumber))
        }
        p.files = Int(number(after: "Number of files:") ?? 0)
        p.bytes = number(after: "Total file size:") ?? 0
        p.bytesToCopy = number(after: "Total transferred file size:") ?? 0
        return p
    }

    /// Copies, reporting overall progress in percent.
    func copy(into mirror: String, progress: @escaping @Sendable (Int) -> Void) throws {
        do {
            try HostCommand.run(rsync(["--info=progress2", "--no-inc-recursive"], into: mirror), timeout: 6 * 3600) { line in
                // "  1,234,567  45%  12.34MB/s    0:00:12 (xfr#…)"
                if let pct = line.split(separator: " ").first(where: { $0.hasSuffix("%") }), let n = Int(pct.dropLast()) { progress(n) }
            }
        } catch let f as HostCommand.Failure where f.status == 24 {
            // "Some files vanished before they could be transferred": a live host changes as it is read.
        } catch {
            throw RehearsalError.infrastructure("copying \(root) failed: \(error)")
        }
    }
}
