import Foundation
import Synchronization

/// A Unix stream socket: a listening one in a run directory (a kept
/// machine's), or a connection to one. Blocking calls, meant for threads
/// of their own. The owner closes it once (`close()`).
public final class UnixSocket: Sendable {
    public let fd: Int32
    /// close() may come from another thread (to wake an accept): once only.
    private let closed = Mutex(false)

    private init(fd: Int32) { self.fd = fd }

    private static func address(_ path: String) throws -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: a.sun_path) else {
            throw RehearsalError.infrastructure("the socket path \(path) is too long (at most \(MemoryLayout.size(ofValue: a.sun_path) - 1) bytes)")
        }
        withUnsafeMutableBytes(of: &a.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return a
    }

    private static func make() throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RehearsalError.infrastructure("socket() failed: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Listens at `path` (replacing a stale socket file), readable only by its owner.
    public static func listen(at path: String) throws -> UnixSocket {
        var a = try address(path)
        let fd = try make()
        unlink(path)
        let bound = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard bound == 0, chmod(path, 0o600) == 0, Glibc.listen(fd, 4) == 0 else {
            let e = String(cString: strerror(errno))
            Glibc.close(fd)
            throw RehearsalError.infrastructure("cannot listen at \(path): \(e)")
        }
        return UnixSocket(fd: fd)
    }

    /// Connects to the socket at `path`.
    public static func connect(to path: String) throws -> UnixSocket {
        var a = try address(path)
        let fd = try make()
        let r = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0 else {
            let e = String(cString: strerror(errno))
            Glibc.close(fd)
            throw RehearsalError.infrastructure("cannot connect to \(path): \(e)")
        }
        return UnixSocket(fd: fd)
    }

    /// The next connection; nil once the socket is closed.
    public func accept() -> UnixSocket? {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 { return UnixSocket(fd: c) }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Reads what is there (blocking); nil at the end or on an error.
    public func read(max: Int = 4096) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: max)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { return Array(buffer[..<n]) }
            if n < 0, errno == EINTR { continue }
            return nil
        }
    }

    /// Reads one line (without its newline), byte by byte so that nothing after it is consumed.
    public func readLine(limit: Int = 1024) -> String? {
        var line: [UInt8] = []
        while line.count < limit {
            guard let b = read(max: 1)?.first else { return nil }
            if b == 0x0a { return String(decoding: line, as: UTF8.self) }
            line.append(b)
        }
        return nil
    }

    /// Writes all of `bytes`; false when the peer is gone.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// Closes it once; an `accept` or `read` blocked in another thread returns.
    public func close() {
        let first = closed.withLock { c -> Bool in
            defer { c = true }
            return !c
        }
        guard first else { return }
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }

    deinit { close() }
}
