/// What one command returned: its two output streams and its exit status.
public struct CommandResult: Sendable, Equatable, Codable {
    public var stdout: [UInt8]
    public var stderr: [UInt8]
    public var status: Int32

    public init(stdout: [UInt8], stderr: [UInt8], status: Int32) {
        self.stdout = stdout
        self.stderr = stderr
        self.status = status
    }

    /// stdout as text; invalid UTF-8 becomes U+FFFD.
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}
