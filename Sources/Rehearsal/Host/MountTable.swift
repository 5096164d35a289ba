import Foundation

/// The mounts of the running system (`/proc/self/mountinfo`), and which of
/// them a capture copies.
///
/// A capture copies the filesystems the OS is made of: the root and every
/// local disk filesystem mounted below it (a separate `/boot`, `/usr`,
/// `/var`, `/home`). Everything else mounted below the root is left out,
/// its mount point kept empty: pseudo-filesystems (`/proc`, `/sys`, `/dev`,
/// `/run`), tmpfs (`/tmp` on many hosts), network filesystems, FUSE, and
/// read-only images mounted from files (snaps' squashfs), whose files are
/// copied anyway as the images they are mounted from.
public struct MountTable: Sendable, Equatable {
    public struct Mount: Sendable, Equatable {
        /// Where it is mounted, with mountinfo's octal escapes undone.
        public var point: String
        public var type: String
        public var source: String
    }

    public var mounts: [Mount]

    /// Filesystem types that hold an OS's own files on a local disk.
    static let localDiskTypes: Set<String> = ["ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "jfs", "reiserfs", "zfs", "vfat", "exfat", "bcachefs"]

    /// Parses mountinfo: `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL…] - TYPE SOURCE SUPER`.
    public init(mountinfo: String) {
        mounts = mountinfo.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard fields.count >= 7, let dash = fields.firstIndex(of: "-"), dash + 2 < fields.count else { return nil }
            return Mount(point: Self.unescape(fields[4]), type: fields[dash + 1], source: Self.unescape(fields[dash + 2]))
        }
    }

    public static func current() throws -> MountTable {
        MountTable(mountinfo: try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8))
    }

    /// `\040` and the like, as the kernel writes spaces, tabs, newlines and backslashes.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = [UInt8](), bytes = Array(s.utf8), i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "\\"), i + 3 < bytes.count,
               let v = UInt8(String(decoding: bytes[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                out.append(v); i += 4
            } else {
                out.append(bytes[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// What a capture of the tree at `root` leaves out: the mount points
    /// below it (relative to it, starting with `/`) whose contents are not
    /// copied, with the type that made the choice. A mount hidden under a
    /// later mount on the same point counts as the later one.
    public func leftOut(under root: String) -> [(point: String, type: String)] {
        let root = root == "/" ? "" : (root.hasSuffix("/") ? String(root.dropLast()) : root)
        var last: [String: Mount] = [:]
        var order: [String] = []
        for m in mounts where m.point.hasPrefix(root + "/") && m.point != root + "/" {
            if last[m.point] == nil { order.append(m.point) }
            last[m.point] = m
        }
        var out: [(String, String)] = []
        for point in order {
            let m = last[point]!
            guard !Self.localDiskTypes.contains(m.type) else { continue }
            let rel = String(point.dropFirst(root.count))
            // Below a mount already left out: nothing of it is copied anyway.
            if out.contains(where: { rel.hasPrefix($0.0 + "/") }) { continue }
            out.append((rel, m.type))
        }
        return out
    }
}
