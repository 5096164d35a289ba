import Foundation

/// A machine's writable disk: a chain of qcow2 files over a generation's
/// read-only base disk. The guest writes only to `active`; each checkpoint
/// freezes the file that was active and starts a new one on top of it.
/// Every file in the chain lives in the run directory and is removed by
/// `remove()`; the base disk is never opened for writing.
struct DiskChain: Sendable {
    let directory: URL
    private(set) var active: URL
    /// Frozen files, oldest first (each a checkpoint's disk state).
    private(set) var frozen: [URL] = []
    private var counter = 0

    /// A new chain over `base` (qcow2 or raw): one empty overlay.
    init(base: String, format: String = "qcow2", directory: URL) throws {
        self.directory = directory
        active = directory.appendingPathComponent("disk-overlay.qcow2")
        try Self.overlay(active, over: base, format: format)
    }

    /// A new chain on a fresh disk holding one empty ext4 filesystem labelled
    /// `label` (no partition table), as `nixos-rebuild build-vm` makes its root
    /// disk: `mkfs.ext4` on a sparse file, converted to qcow2.
    init(freshExt4 label: String, sizeMiB: Int, directory: URL) throws {
        self.directory = directory
        active = directory.appendingPathComponent("disk-root.qcow2")
        let raw = directory.appendingPathComponent("disk-root.raw")
        defer { try? FileManager.default.removeItem(at: raw) }
        do {
            try HostCommand.run(["mkfs.ext4", "-q", "-F", "-L", label, raw.path, "\(sizeMiB)M"])
            try HostCommand.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw.path, active.path])
        } catch {
            try? FileManager.default.removeItem(at: active)
            throw RehearsalError.infrastructure("making a fresh root disk failed: \(error)")
        }
    }

    /// The next overlay file's name.
    mutating func nextFile() -> URL {
        counter += 1
        return directory.appendingPathComponent("disk-overlay-\(counter).qcow2")
    }

    /// Records that `next` (made by a live snapshot) is now active and the old active file is frozen.
    mutating func froze(next: URL) {
        frozen.append(active)
        active = next
    }

    /// Freezes the active file (the guest is stopped) and starts a new one on top of it.
    mutating func freeze() throws {
        let next = nextFile()
        try Self.overlay(next, over: active.path)
        froze(next: next)
    }

    /// Throws away the active file and starts a fresh one over `layer` (a frozen file).
    mutating func reset(to layer: URL) throws {
        let next = nextFile()
        try Self.overlay(next, over: layer.path)
        try? FileManager.default.removeItem(at: active)
        active = next
    }

    /// Removes every file of the chain.
    func remove() {
        for f in frozen + [active] { try? FileManager.default.removeItem(at: f) }
    }

    static func overlay(_ file: URL, over base: String, format: String = "qcow2") throws {
        do {
            try HostCommand.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", format, file.path])
        } catch {
            throw RehearsalError.infrastructure("creating a disk overlay failed: \(error)")
        }
    }
}
