import Foundation

/// Writes into a captured copy that can never land outside it.
///
/// The copy is the host's tree, symbolic links included, and an absolute
/// link in it points at the *host's* file: `/etc/fstab -> /run/fstab`
/// written through would change the host. So every component of a path
/// below the copy is checked (lstat) before anything is written: a link on
/// the way is refused, and a link at the end is replaced, never followed.
enum MirrorPath {
    /// The absolute path of `rel` in `tree`, after checking that no directory on the way is a symbolic link.
    static func checked(_ rel: String, in tree: URL) throws -> String {
        var path = tree.path
        let parts = rel.split(separator: "/").map(String.init)
        for part in parts.dropLast() {
            guard part != "..", part != "." else { throw refused(rel, "has `\(part)` in it") }
            path += "/" + part
            var st = stat()
            if lstat(path, &st) == 0 {
                if (st.st_mode & S_IFMT) == S_IFLNK { throw refused(rel, "\(path) is a symbolic link") }
                guard (st.st_mode & S_IFMT) == S_IFDIR else { throw refused(rel, "\(path) is not a directory") }
            } else if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw refused(rel, "can't make \(path): \(String(cString: strerror(errno)))")
            }
        }
        guard let last = parts.last, last != "..", last != "." else { throw refused(rel, "names no file") }
        return path + "/" + last
    }

    /// Makes `rel` a directory (and the ones above it) inside `tree`.
    static func directory(_ rel: String, in tree: URL) throws -> String {
        let p = try checked(rel, in: tree)
        var st = stat()
        if lstat(p, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { return p }
            throw refused(rel, "\(p) exists and is not a directory")
        }
        guard mkdir(p, 0o755) == 0 else { throw refused(rel, "can't make \(p): \(String(cString: strerror(errno)))") }
        return p
    }

    /// Writes `text` to `rel` as a regular file (a link there is removed first; an existing file keeps its mode).
    static func write(_ text: String, to rel: String, in tree: URL) throws {
        let p = try checked(rel, in: tree)
        removeLink(p)
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw refused(rel, "can't write \(p): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw refused(rel, "can't write \(p): \(String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Makes `rel` a symbolic link to `dest` (whatever was there is replaced).
    static func symlink(_ rel: String, to dest: String, in tree: URL) throws {
        let p = try checked(rel, in: tree)
        var st = stat()
        if lstat(p, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { throw refused(rel, "\(p) is a directory") }
            unlink(p)
        }
        guard Glibc.symlink(dest, p) == 0 else { throw refused(rel, "can't link \(p): \(String(cString: strerror(errno)))") }
    }

    private static func removeLink(_ p: String) {
        var st = stat()
        if lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK { unlink(p) }
    }

    private static func refused(_ rel: String, _ why: String) -> RehearsalError {
        RehearsalError.infrastructure("adapting the copy: won't write /\(rel): \(why)")
    }
}
