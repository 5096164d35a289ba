import Foundation

/// Runs a host helper (recipe builds, qemu-img, mkfs…) with an argument vector
/// (never through a shell string), its output captured.
///
/// The helper gets default signal dispositions (SIGPIPE included, not the
/// harness's SIG_IGN), a process group of its own (^C at the terminal is the
/// harness's to handle, not the helper's), /dev/null as standard input, and
/// optionally a time limit after which it is ended.
public enum HostCommand {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        /// The exit status, or 128 + the signal that ended it.
        public let status: Int32
        public let output: String
        /// The time limit in seconds, when the helper was ended for passing it.
        public let timedOut: Double?

        public init(command: [String], status: Int32, output: String, timedOut: Double? = nil) {
            self.command = command
            self.status = status
            self.output = output
            self.timedOut = timedOut
        }

        public var description: String {
            let tail = output.split(separator: "\n").suffix(3).joined(separator: " | ")
            let what = timedOut.map { "timed out after \(Self.seconds($0)) s" } ?? "exited with status \(status)"
            return "\(command.joined(separator: " ")) \(what)\(tail.isEmpty ? "" : ": \(tail)")"
        }

        private static func seconds(_ s: Double) -> String { s == s.rounded() ? String(Int(s)) : String(s) }
    }

    /// Runs to completion; each line of combined output goes to `onLine` as it
    /// arrives. Throws `Failure` on a non-zero status, or when `timeout` seconds
    /// pass first: the helper's group then gets SIGTERM, and SIGKILL
    /// `escalation` seconds later if it is still there.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil,
                           timeout: Double? = nil, escalation: Double = 5,
                           onLine: (@Sendable (String) -> Void)? = nil) throws -> String {
        let env = environment ?? ProcessInfo.processInfo.environment
        guard let name = argv.first, let path = HostProgram.resolve(name, path: env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin") else {
            throw Failure(command: argv, status: 127, output: "command not found: \(argv.first ?? "")")
        }
        // pipe2 is hidden from Swift; Spawn closes every descriptor above 2 in its
        // children anyway, so these cannot leak into another helper.
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Spawn.Failure(what: "pipe", code: errno) }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(fds[0]) }
        let child: Spawn
        do {
            defer { close(fds[1]); if null >= 0 { close(null) } }
            guard null >= 0 else { throw Spawn.Failure(what: "/dev/null", code: errno) }
            child = try Spawn(path: path, argv: argv, environment: env, stdio: [null, fds[1], fds[1]], ownProcessGroup: true)
        }
        let watchdog = timeout.map { Watchdog(child: child, timeout: $0, escalation: escalation) }
        let all = readLines(fds[0], onLine: onLine)
        try child.awaitExit()
        watchdog?.childEnded()
        let end = try child.wait()
        let out = String(decoding: all, as: UTF8.self)
        if let timeout, watchdog?.didFire == true {
            throw Failure(command: argv, status: end.shellStatus, output: out, timedOut: timeout)
        }
        guard end == .exited(0) else { throw Failure(command: argv, status: end.shellStatus, output: out) }
        return out
    }

    /// Everything read from `fd` until end of file, passed on line by line.
    private static func readLines(_ fd: Int32, onLine: (@Sendable (String) -> Void)?) -> Data {
        var all = Data()
        var pending = Data()
        var afterCR = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            all.append(contentsOf: buffer[0..<n])
            pending.append(contentsOf: buffer[0..<n])
            // A carriage return ends a line too (progress meters redraw one line with it).
            while let nl = pending.firstIndex(where: { $0 == 10 || $0 == 13 }) {
                let line = pending[pending.startIndex..<nl]
                if !(line.isEmpty && afterCR) { onLine?(String(decoding: line, as: UTF8.self)) }
                afterCR = pending[nl] == 13
                pending = Data(pending[(nl + 1)...])
            }
        }
        if !pending.isEmpty { onLine?(String(decoding: pending, as: UTF8.self)) }
        return all
    }
}
