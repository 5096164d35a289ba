import Foundation
import Testing

/// What the process tests share: the harness's signal dispositions, scratch
/// files, and reading a child's `/proc` status lines.
enum ChildProcessFixture {
    // Counted so that suites running in parallel neither restore too early nor
    // leave the test process with SIGPIPE/SIGINT ignored when the last one ends.
    nonisolated(unsafe) private static var holders = 0
    nonisolated(unsafe) private static var saved: [Int32: sighandler_t?] = [:]
    private static let lock = NSLock()

    /// Runs `body` with SIGPIPE and SIGINT ignored, as the harness has them
    /// (`Interruption.install()` sets SIG_IGN before its dispatch sources).
    static func withHarnessSignalsIgnored<T>(_ body: () throws -> T) rethrows -> T {
        lock.withLock {
            if holders == 0 { for s in [SIGPIPE, SIGINT] { saved[s] = signal(s, SIG_IGN) } }
            holders += 1
        }
        defer {
            lock.withLock {
                holders -= 1
                if holders == 0 { for (s, h) in saved { signal(s, h) } }
            }
        }
        return try body()
    }

    /// A fresh scratch directory, removed by the caller.
    static func scratch() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rh-proc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The hex masks `SigIgn:` / `SigBlk:` from lines as `/proc/PID/status` prints them.
    static func mask(_ name: String, in status: String) -> UInt64? {
        for line in status.split(separator: "\n") where line.hasPrefix("\(name):") {
            return UInt64(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        return nil
    }

    /// glibc's own real-time signals (32 and 33: thread cancellation and setxid),
    /// which its posix_spawn leaves ignored in every child and which glibc
    /// re-installs for itself; no program sees them.
    static let glibcInternal: UInt64 = (1 << 31) | (1 << 32)
}
