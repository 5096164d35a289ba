import Foundation

/// A `flock` on a file (exclusive unless asked for shared), held until `unlock()` or process exit.
///
/// The kernel drops the lock when the process dies, even by SIGKILL, which is
/// what makes it a safe marker of "a live process owns this".
public final class FileLock: @unchecked Sendable {
    // @unchecked: `fd` is written once and cleared under `lock`.
    private let lock = NSLock()
    private var fd: Int32
    public let path: String

    /// Waits for the lock.
    public static func acquire(path: String) throws -> FileLock {
        guard let l = try FileLock(path: path, wait: true) else {
            throw CocoaError(.fileLocking, userInfo: [NSFilePathErrorKey: path])
        }
        return l
    }

    /// Takes the lock, or returns nil at once when `wait` is false and someone holds it.
    /// Shared locks exclude only exclusive ones (users of a thing against its remover).
    public init?(path: String, wait: Bool, shared: Bool = false) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        if flock(fd, (shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB)) != 0 {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { unlock() }

    /// Turns an exclusive lock into a shared one on the same descriptor, with no moment unlocked.
    public func downgrade() {
        lock.lock(); let f = fd; lock.unlock()
        if f >= 0 { flock(f, LOCK_SH) }
    }

    public func unlock() {
        lock.lock(); let f = fd; fd = -1; lock.unlock()
        if f >= 0 { flock(f, LOCK_UN); close(f) }
    }

    /// Whether someone holds the lock on `path` now (without taking it for long).
    public static func isHeld(path: String) -> Bool {
        guard FileManager.default.fileExists(atPath: path) else { return false }
        guard let l = try? FileLock(path: path, wait: false) else { return true }
        l.unlock()
        return false
    }
}
