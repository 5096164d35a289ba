/// Reassembles one command's answer (see `ShellProtocol`) from bytes that
/// arrive in pieces of any size.
///
/// Feed it everything read from the channel; once `result` is set, the bytes
/// after the frame are in `remainder`. Bytes before the frame are kept in
/// `noise` for the log. Nothing inside the frame is interpreted, so binary
/// output, marker look-alikes and very long lines pass through unchanged.
public struct FrameParser: Sendable {
    private enum Phase: Sendable { case begin, stdout, stderr, status, done }

    private let begin: [UInt8]
    private let stderrMark: [UInt8]
    private let endMark: [UInt8]
    private let crlf: Bool
    private var phase = Phase.begin
    /// Bytes not yet assigned: at most a partial marker once `advance` returns.
    private var buffer: [UInt8] = []

    public private(set) var noise: [UInt8] = []
    public private(set) var stdout: [UInt8] = []
    public private(set) var stderr: [UInt8] = []
    public private(set) var result: CommandResult?
    public private(set) var remainder: [UInt8] = []
    /// Whether the frame's end marker (`\x01 M E`) has been seen.
    public var reachedEnd: Bool { phase == .status || phase == .done }
    /// Bytes fed but not yet part of the answer: a partial marker, or what follows the frame.
    public var pending: [UInt8] { phase == .done ? remainder : buffer }

    /// - Parameter crlf: the tty turns `\n` into `\r\n` (stty could not switch
    ///   it off), so marker lines end in `\r\n` and outputs are normalised back.
    public init(marker: Int, crlf: Bool = false) {
        let m = [ShellProtocol.lead] + Array(String(marker).utf8)
        let nl: [UInt8] = crlf ? [13, 10] : [10]
        begin = m + [UInt8(ascii: "B")] + nl
        stderrMark = m + [UInt8(ascii: "e")] + nl
        endMark = m + [UInt8(ascii: "E")]
        self.crlf = crlf
    }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws {
        guard phase != .done else { remainder.append(contentsOf: bytes); return }
        buffer.append(contentsOf: bytes)
        try advance()
    }

    private mutating func advance() throws {
        while true {
            switch phase {
            case .begin:
                guard let r = search(begin) else { noise += takeSettled(keeping: begin.count); return }
                noise += buffer[..<r.lowerBound]
                consume(upTo: r.upperBound)
                phase = .stdout
            case .stdout:
                let e = search(stderrMark), f = search(endMark)
                if let e, f == nil || e.lowerBound < f!.lowerBound {
                    stdout += buffer[..<e.lowerBound]; consume(upTo: e.upperBound); phase = .stderr
                } else if let f {
                    stdout += buffer[..<f.lowerBound]; consume(upTo: f.upperBound); phase = .status
                } else { stdout += takeSettled(keeping: max(stderrMark.count, endMark.count)); return }
            case .stderr:
                guard let f = search(endMark) else { stderr += takeSettled(keeping: endMark.count); return }
                stderr += buffer[..<f.lowerBound]; consume(upTo: f.upperBound); phase = .status
            case .status:
                guard let nl = buffer.firstIndex(of: 10) else {
                    if buffer.count > 16 { throw Self.malformedStatus(String(decoding: buffer, as: UTF8.self)) }
                    return
                }
                var text = String(decoding: buffer[..<nl], as: UTF8.self)
                if crlf, text.hasSuffix("\r") { text.removeLast() }
                guard let status = Int32(text) else { throw Self.malformedStatus(text) }
                remainder = Array(buffer[(nl + 1)...])
                buffer = []
                if crlf { stdout = Self.uncrlf(stdout); stderr = Self.uncrlf(stderr) }
                result = CommandResult(stdout: stdout, stderr: stderr, status: status)
                phase = .done
                return
            case .done:
                return
            }
        }
    }

    private func search(_ needle: [UInt8]) -> Range<Int>? {
        buffer.firstRange(of: needle)
    }

    private mutating func consume(upTo end: Int) {
        buffer.removeFirst(end)
    }

    /// Removes and returns all but the last `keep - 1` bytes, which could be
    /// the start of a marker split across reads.
    private mutating func takeSettled(keeping keep: Int) -> [UInt8] {
        let n = buffer.count - (keep - 1)
        guard n > 0 else { return [] }
        let settled = Array(buffer[..<n])
        buffer.removeFirst(n)
        return settled
    }

    static func uncrlf(_ b: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        var i = 0
        while i < b.count {
            if b[i] == 13, i + 1 < b.count, b[i + 1] == 10 { i += 1; continue }
            out.append(b[i]); i += 1
        }
        return out
    }
}

extension FrameParser {
    static func malformedStatus(_ s: String) -> RehearsalError {
        .infrastructure("malformed exit status \(s.debugDescription) in the guest's answer")
    }
}
