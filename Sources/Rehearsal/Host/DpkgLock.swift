import Foundation

/// dpkg's own locks on a tree (`var/lib/dpkg/lock-frontend`, then
/// `var/lib/dpkg/lock`), held while a capture reads it, so that no
/// `apt-get` or `dpkg` changes the package database halfway through the copy.
///
/// They are the fcntl record locks dpkg and APT take; taking one opens the
/// file without writing it. A lock someone holds is refused at once, not
/// waited for: a package operation may take minutes and wants the terminal.
final class DpkgLock: @unchecked Sendable {
    // @unchecked: `fds` is written once in init and cleared under `lock`.
    private let lock = NSLock()
    private var fds: [Int32] = []

    init(root: String) throws {
        let dir = URL(fileURLWithPath: root).appendingPathComponent("var/lib/dpkg")
        for name in ["lock-frontend", "lock"] {
            let path = dir.appendingPathComponent(name).path
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let fd = open(path, O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { release(); throw RehearsalError.infrastructure("can't open dpkg's lock \(path): \(String(cString: strerror(errno)))") }
            var l = flock()
            l.l_type = Int16(F_WRLCK)
            l.l_whence = Int16(SEEK_SET)
            if fcntl(fd, F_SETLK, &l) != 0 {
                let code = errno
                close(fd)
                release()
                if code == EAGAIN || code == EACCES {
                    throw RehearsalError(.hostBusy, "dpkg or APT is running on \(root), or another capture is reading it (\(path) is locked): capture again when it has finished")
                }
                throw RehearsalError.infrastructure("can't lock dpkg's \(path): \(String(cString: strerror(code)))")
            }
            fds.append(fd)
        }
    }

    deinit { release() }

    func release() {
        lock.lock(); let all = fds; fds = []; lock.unlock()
        for fd in all.reversed() { close(fd) }
    }
}
