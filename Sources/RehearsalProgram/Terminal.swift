import Foundation
import Synchronization

/// Where progress goes: colour and in-place status lines only on a terminal,
/// and no colour when `NO_COLOR` is set.
///
/// Lines that stay scroll up; below them a *board* of status lines (one per
/// running scenario) is redrawn in place. Off a terminal the board is never
/// drawn, so logs hold only the lines that stay.
public final class Terminal: Sendable {
    public let isTTY: Bool
    public let colour: Bool
    /// Columns of the terminal: board lines are cut to fit, so that each
    /// takes one row and the redraw knows how many rows to clear.
    public let width: Int
    private struct State {
        var board: [String] = []
        /// How many board lines are on the screen now.
        var shown = 0
    }
    private let state = Mutex(State())

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isTTY = isatty(STDOUT_FILENO) == 1
        var size = winsize()
        width = ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 10 ? Int(size.ws_col) : 100
        colour = isTTY && (environment["NO_COLOR"] ?? "").isEmpty && environment["TERM"] != "dumb"
    }

    public enum Style: String, Sendable { case green = "32", red = "31", yellow = "33", dim = "2", bold = "1", magenta = "35" }

    public func paint(_ s: String, _ style: Style) -> String { colour ? "\u{1b}[\(style.rawValue)m\(s)\u{1b}[0m" : s }

    /// A line that stays.
    public func line(_ s: String) { lines([s]) }

    /// Lines that stay, printed together (nothing else comes between them).
    public func lines(_ ls: [String]) {
        state.withLock { st in
            var out = clear(&st)
            out += ls.map { $0 + "\n" }.joined()
            out += draw(&st)
            write(out)
        }
    }

    /// One status line that the next output replaces (only on a terminal).
    public func status(_ s: String) { board([s]) }

    /// Status lines redrawn in place under the lines that stay (only on a terminal).
    public func board(_ ls: [String]) {
        guard isTTY else { return }
        state.withLock { st in
            var out = clear(&st)
            st.board = ls.map { $0.count < width ? $0 : String($0.prefix(width - 2)) + "…" }
            out += draw(&st)
            write(out)
        }
    }

    /// Removes the status lines.
    public func finishLine() { board([]) }

    private func clear(_ st: inout State) -> String {
        guard st.shown > 0 else { return "" }
        let out = "\r\u{1b}[2K" + String(repeating: "\u{1b}[1A\u{1b}[2K", count: st.shown - 1)
        st.shown = 0
        return out
    }

    private func draw(_ st: inout State) -> String {
        guard isTTY, !st.board.isEmpty else { return "" }
        st.shown = st.board.count
        return st.board.joined(separator: "\n")
    }

    private func write(_ s: String) {
        guard !s.isEmpty else { return }
        FileHandle.standardOutput.write(Data(s.utf8))
    }
}
