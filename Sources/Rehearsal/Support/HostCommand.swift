import Foundation

/// Runs a host program with an argument vector (never through a shell string).
public enum HostCommand {
    public struct Failure: Error, CustomStringConvertible {
        public let command: [String]
        public let status: Int32
        public let output: String
        public var description: String {
            let tail = output.split(separator: "\n").suffix(3).joined(separator: " | ")
            return "\(command.joined(separator: " ")) exited with status \(status)\(tail.isEmpty ? "" : ": \(tail)")"
        }
    }

    /// Runs to completion; each line of combined output goes to `onLine` as it
    /// arrives. Throws `Failure` on a non-zero status.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String]? = nil,
                           onLine: (@Sendable (String) -> Void)? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : "/usr/bin/env")
        p.arguments = argv[0].hasPrefix("/") ? Array(argv.dropFirst()) : argv
        if let environment { p.environment = environment }
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        try p.run()
        var all = Data()
        var pending = Data()
        let h = pipe.fileHandleForReading
        while true {
            let chunk = h.availableData
            if chunk.isEmpty { break }
            all.append(chunk)
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 10) {
                onLine?(String(decoding: pending[pending.startIndex..<nl], as: UTF8.self))
                pending = Data(pending[(nl + 1)...])
            }
        }
        if !pending.isEmpty { onLine?(String(decoding: pending, as: UTF8.self)) }
        p.waitUntilExit()
        let out = String(decoding: all, as: UTF8.self)
        guard p.terminationReason == .exit, p.terminationStatus == 0 else {
            throw Failure(command: argv, status: p.terminationStatus, output: out)
        }
        return out
    }
}
