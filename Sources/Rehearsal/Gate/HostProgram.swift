import Foundation

/// Runs the host command a gate guards: an argument vector, never a shell
/// string, with the caller's standard input, output and error.
public enum HostProgram {
    /// Runs `argv` (argv[0] looked up in PATH unless it has a slash) and
    /// returns its exit status, or 128 + the signal that killed it.
    public static func run(_ argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int32 {
        guard let name = argv.first, !name.isEmpty else { throw MachineError.scenario("no command to run") }
        guard let path = resolve(name, path: environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin") else {
            throw MachineError.scenario("command not found: \(name)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = Array(argv.dropFirst())
        try p.run()
        p.waitUntilExit()
        return p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    }

    static func resolve(_ name: String, path: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
