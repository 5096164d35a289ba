import Foundation

/// A person's terminal attached to a console (`shell`, `attach`): what is
/// typed goes to `send` (keys as typed, in raw mode, when stdin is a
/// terminal) until Ctrl-] on a terminal, the end of the input, `send`
/// failing, or `ended` returning. The console's bytes go to `output`.
enum ConsoleAttachment {
    /// Ctrl-], as in `virsh console` and telnet.
    static let escapeByte: UInt8 = 0x1d

    /// Writes console bytes to stdout as they come.
    static func output(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }

    /// Returns why it ended. `send` returns nil, or why it failed;
    /// `finally` runs as soon as it ends (and must make `ended` return).
    static func run(escape: Bool, send: @escaping @Sendable ([UInt8]) async -> String?,
                    ended: @escaping @Sendable () async -> String, finally: @Sendable () -> Void = {}) async -> String {
        let input = StandardInput.chunks()
        return await withTaskGroup(of: String.self) { group in
            group.addTask { await ended() }
            group.addTask {
                for await chunk in input {
                    if escape, let i = chunk.firstIndex(of: escapeByte) {
                        _ = await send(Array(chunk[..<i]))
                        return "left with Ctrl-]"
                    }
                    if let failed = await send(chunk) { return failed }
                }
                return "end of input"
            }
            let first = await group.next() ?? "the session ended"
            finally()
            group.cancelAll()
            return first
        }
    }
}

/// The standard input as chunks of bytes, read on a thread of its own (a
/// blocking `read` must not hold a thread of the cooperative pool).
enum StandardInput {
    static func chunks() -> AsyncStream<[UInt8]> {
        AsyncStream { continuation in
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { break }
                    if case .terminated = continuation.yield(Array(buffer[..<n])) { break }
                }
                continuation.finish()
            }
            thread.start()
        }
    }
}

/// The controlling terminal in raw mode (keys go to the guest as typed,
/// ^C included; the guest's own CR LF reach the screen unchanged), restored
/// by `restore()`. Nil when stdin is not a terminal.
final class RawTerminal {
    private var saved = termios()

    init?() {
        guard isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &saved) == 0 else { return nil }
        var raw = saved
        cfmakeraw(&raw)
        guard tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0 else { return nil }
    }

    func restore() { _ = tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
}
