import Foundation
import Libvirt

/// The libvirt connection machines are started on, and how it was chosen.
///
/// With no `--connect` and no `LIBVIRT_DEFAULT_URI`, Rehearsal uses libvirt's
/// embedded QEMU driver (`qemu:///embed?root=DIR`), which needs no daemon.
/// An embedded root can be used by one process at a time, and a fresh root
/// costs seconds on its first domain (QEMU's capabilities are probed and
/// cached there), so roots are kept in the state directory and shared out as
/// a small pool: each process takes the first root whose lock is free.
public final class Hypervisor: Sendable {
    public let connection: Connection
    public let uri: String
    public let accelerator: Accelerator
    public let acceleratorReason: String
    /// Boots on this connection, at most one per core at a time.
    public let bootSlots = BootSlots()
    /// Held for as long as we use an embedded root.
    private let rootLock: FileLock?

    public static let poolSize = 8

    /// Opens the connection `uri` names, or an embedded root from the pool.
    public init(uri explicitURI: String?, accelerator forced: Accelerator?, state: StateDirectory,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let (accel, reason) = forced.map { ($0, "chosen with --accel") } ?? Accelerator.detect()
        self.accelerator = accel
        self.acceleratorReason = reason
        let requested = explicitURI ?? environment["LIBVIRT_DEFAULT_URI"].flatMap { $0.isEmpty ? nil : $0 }
        if let requested {
            self.uri = requested
            self.rootLock = nil
            do { self.connection = try Connection(uri: requested) } catch let e as LibvirtError {
                throw RehearsalError.infrastructure("cannot connect to \(requested): \(e.message)", underlying: e)
            }
            return
        }
        let roots = try state.create(state.embedRoots)
        var taken: (URL, FileLock)?
        for i in 0..<Self.poolSize {
            let dir = roots.appendingPathComponent("root-\(i)")
            if let lock = try FileLock(path: dir.path + ".lock", wait: false) {
                taken = (dir, lock)
                break
            }
        }
        guard let (dir, lock) = taken else {
            throw RehearsalError.infrastructure("all \(Self.poolSize) embedded libvirt roots under \(roots.path) are in use by other rehearse processes")
        }
        try Self.prepareEmbeddedRoot(dir)
        self.rootLock = lock
        self.uri = "qemu:///embed?root=\(dir.path)"
        do { self.connection = try Connection(uri: uri) } catch let e as LibvirtError {
            lock.unlock()
            // Decided by the host's state, not libvirt's wording.
            let hint = getpwnam("libvirt-qemu") == nil ? " (run scripts/setup.sh: it creates the libvirt-qemu account libvirt insists on)" : ""
            throw RehearsalError.infrastructure("cannot open libvirt's embedded QEMU driver at \(dir.path): \(e.message)\(hint)", underlying: e)
        }
    }

    /// The embedded root's own directory, when this is one.
    public var embeddedRoot: String? {
        guard uri.hasPrefix("qemu:///embed?root=") else { return nil }
        return String(uri.dropFirst("qemu:///embed?root=".count))
    }

    /// Writes the root's qemu.conf: run QEMU as the calling user and leave
    /// file ownership and labels alone, so images stay untouched and no
    /// daemon-side accounts are needed.
    static func prepareEmbeddedRoot(_ dir: URL) throws {
        // The embedded driver reads ROOT/etc/qemu.conf.
        let etc = dir.appendingPathComponent("etc")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        let conf = """
        # Written by rehearse. Images are read-only inputs: never relabel or chown them.
        user = "+\(getuid())"
        group = "+\(getgid())"
        dynamic_ownership = 0
        remember_owner = 0
        security_driver = "none"
        stdio_handler = "file"

        """
        let path = etc.appendingPathComponent("qemu.conf")
        if (try? String(contentsOf: path, encoding: .utf8)) != conf {
            try conf.write(to: path, atomically: true, encoding: .utf8)
        }
    }

    public func close() {
        connection.close()
        rootLock?.unlock()
    }
}
