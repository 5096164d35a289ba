import Foundation

/// Where progress goes: colour and in-place status lines only on a terminal,
/// and no colour when `NO_COLOR` is set.
final class Terminal: @unchecked Sendable {
    // @unchecked: output is serialised by `lock`.
    private let lock = NSLock()
    let isTTY = isatty(STDOUT_FILENO) == 1
    let colour: Bool
    private var statusShown = false

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        colour = isTTY && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }

    enum Style: String { case green = "32", red = "31", yellow = "33", dim = "2", bold = "1", magenta = "35" }

    func paint(_ s: String, _ style: Style) -> String { colour ? "\u{1b}[\(style.rawValue)m\(s)\u{1b}[0m" : s }

    /// A line that stays.
    func line(_ s: String) {
        lock.withLock {
            if statusShown { write("\r\u{1b}[2K"); statusShown = false }
            write(s + "\n")
        }
    }

    /// A line that the next output replaces (only on a terminal; elsewhere it is dropped).
    func status(_ s: String) {
        guard isTTY else { return }
        lock.withLock {
            write("\r\u{1b}[2K" + s)
            statusShown = true
        }
    }

    func finishLine() {
        lock.withLock { if statusShown { write("\r\u{1b}[2K"); statusShown = false } }
    }

    private func write(_ s: String) { FileHandle.standardOutput.write(Data(s.utf8)) }
}
