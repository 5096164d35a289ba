import Foundation

/// The command channel in both directions, with times: `channel-trace.log`,
/// one line per chunk written or read, for a person reading a failure (and
/// for bundles). `channel.log` keeps the guest's raw bytes.
///
///     [    2.341] > ␁12345 run …      (host to guest)
///     [    2.350] < ␁12345 0 …        (guest to host)
///
/// Bytes outside printable ASCII are written as `\n`, `\r`, `\t` or `\xNN`.
/// Not thread-safe on its own: `MachineIO` calls it under its lock.
struct ChannelTrace: Sendable {
    enum Direction: String { case sent = ">", received = "<" }

    private let started: Stopwatch
    private var file: FileHandle?

    init(started: Stopwatch, file url: URL?) {
        self.started = started
        if let url {
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            file = FileHandle(forWritingAtPath: url.path)
        }
    }

    func record(_ direction: Direction, _ bytes: some Collection<UInt8>) {
        guard let file, !bytes.isEmpty else { return }
        file.write(Data((String(format: "[%9.3f] ", started.seconds) + direction.rawValue + " " + Self.escape(bytes) + "\n").utf8))
    }

    static func escape(_ bytes: some Collection<UInt8>) -> String {
        var out = ""
        for b in bytes {
            switch b {
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0x5c: out += "\\\\"
            case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(b))
            default: out += String(format: "\\x%02x", b)
            }
        }
        return out
    }

    mutating func close() {
        try? file?.close()
        file = nil
    }
}
