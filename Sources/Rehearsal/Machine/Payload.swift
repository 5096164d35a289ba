import Foundation

/// A host directory handed to the guest read-only: copied into a small ext4
/// disk image (made with `mkfs.ext4 -d`, no loop mount), attached as a
/// read-only virtio disk with serial `rehearse-payload`, and mounted at
/// `/mnt/payload` after every boot. A disk rather than a shared folder, so
/// the guest needs nothing but virtio-blk and ext4, and cannot change it.
public struct Payload: Sendable {
    public static let mountPoint = "/mnt/payload"
    static let serial = "rehearse-payload"
    static let uuid = "6f1a0a4e-7265-6865-6172-736500000001"

    /// The disk image in the run directory.
    public let disk: URL

    /// Makes the disk image from `source` in `directory`.
    public static func make(from source: URL, in directory: URL) throws -> Payload {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source.path, isDirectory: &isDir), isDir.boolValue else {
            throw RehearsalError.scenario("the payload \(source.path) is not a directory")
        }
        let bytes = Int64((try? HostCommand.run(["du", "-sb", source.path]))?.split(separator: "\t").first.flatMap { Int64($0) } ?? 0)
        let mib = max(16, bytes * 6 / 5 / (1 << 20) + 16)
        let disk = directory.appendingPathComponent("payload.img")
        do {
            // The same files give the same bytes (fixed UUID, hash seed and
            // creation time), so a payload is part of a saved state's identity by content.
            try HostCommand.run(["env", "E2FSPROGS_FAKE_TIME=1000000000", "mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-L", "payload",
                                 "-U", Self.uuid, "-E", "hash_seed=\(Self.uuid)", "-d", source.path, disk.path, "\(mib)M"])
        } catch {
            try? FileManager.default.removeItem(at: disk)
            throw RehearsalError.infrastructure("making the payload disk from \(source.path) failed: \(error)")
        }
        return Payload(disk: disk)
    }

    /// The guest command that mounts it (read-only) at `mountPoint`.
    static let mountCommand = """
        d=; for b in /sys/block/vd*; do [ "$(cat $b/serial 2>/dev/null)" = \(serial) ] && d=/dev/${b##*/}; done; \
        [ -n "$d" ] || { echo 'no payload disk in the guest (it needs virtio-blk)' >&2; exit 1; }; \
        mkdir -p \(mountPoint) && { mountpoint -q \(mountPoint) || mount -o ro -t ext4 "$d" \(mountPoint); }
        """

    func remove() { try? FileManager.default.removeItem(at: disk) }
}
