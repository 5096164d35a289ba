import Foundation

/// Runs the host command a gate guards: an argument vector, never a shell
/// string, exactly as if typed at the shell that started rehearse.
///
/// It runs in rehearse's own process group (the terminal's foreground group),
/// so it can prompt, read a password and get ^C; with every signal at its
/// default and an empty mask (the harness ignores SIGPIPE, SIGINT, SIGTERM and
/// SIGHUP, which would otherwise be inherited); and with only descriptors 0-2.
public enum HostProgram {
    /// Runs `argv` (argv[0] looked up in PATH unless it has a slash) and
    /// returns its exit status, or 128 + the signal that killed it.
    public static func run(_ argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Int32 {
        try run(argv, environment: environment, stdio: [0, 1, 2])
    }

    /// `stdio`: the descriptors that become the command's 0, 1 and 2 (tests give a pipe).
    static func run(_ argv: [String], environment: [String: String] = ProcessInfo.processInfo.environment,
                    stdio: [Int32]) throws -> Int32 {
        guard let name = argv.first, !name.isEmpty else { throw RehearsalError.scenario("no command to run") }
        guard let path = resolve(name, path: environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin") else {
            throw RehearsalError.scenario("command not found: \(name)")
        }
        // ^C now belongs to the command; the harness only waits, so that it
        // never exits under a running upgrade or without recording the decision.
        let child = try Interruption.shared.whileForegroundChildRuns { started in
            let child = try Spawn(path: path, argv: argv, environment: environment, stdio: stdio)
            started(child.pid)
            try child.awaitExit()
            return child
        }
        return try child.wait().shellStatus
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
