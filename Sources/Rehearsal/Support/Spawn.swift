import Foundation

/// How a child process ended.
public enum Termination: Equatable, Sendable {
    case exited(Int32)
    case signalled(Int32)

    /// The status a shell reports: the exit code, or 128 + the signal.
    public var shellStatus: Int32 {
        switch self {
        case .exited(let code): return code
        case .signalled(let sig): return 128 + sig
        }
    }
}

/// A child started with `posix_spawn`, with every signal at its default
/// disposition, an empty signal mask, and only the three standard descriptors.
///
/// Foundation's `Process` is not used because its child keeps the parent's
/// ignored signals (the harness ignores SIGPIPE, SIGINT, SIGTERM and SIGHUP)
/// and always gets a process group of its own, away from the terminal.
struct Spawn: Sendable {
    /// A `posix_spawn` or `waitpid` that failed.
    struct Failure: Error, CustomStringConvertible {
        let what: String
        let code: Int32
        var description: String { "\(what): \(String(cString: strerror(code)))" }
    }

    let pid: pid_t
    /// Whether the child leads a process group of its own (signals go to the whole group).
    let ownProcessGroup: Bool

    /// Starts `path` with `argv` (argv[0] included). `stdio` names the parent's
    /// descriptors that become the child's 0, 1 and 2; each must be itself or above 2.
    init(path: String, argv: [String], environment: [String: String],
         stdio: [Int32] = [0, 1, 2], ownProcessGroup: Bool = false) throws {
        precondition(stdio.count == 3, "stdio names the child's descriptors 0, 1 and 2")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (target, source) in stdio.enumerated() where source != Int32(target) {
            posix_spawn_file_actions_adddup2(&actions, source, Int32(target))
        }
        try Self.closeTheRest(&actions)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Every signal back to SIG_DFL: an ignored SIGPIPE or SIGINT is inherited
        // across exec, and a program typed at a shell never starts with one.
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if ownProcessGroup {
            flags |= POSIX_SPAWN_SETPGROUP
            posix_spawnattr_setpgroup(&attr, 0)
        }
        posix_spawnattr_setflags(&attr, Int16(flags))

        let cArgv = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgv + cEnv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, cArgv, cEnv)
        guard rc == 0 else { throw Failure(what: "cannot start \(path)", code: rc) }
        self.pid = pid
        self.ownProcessGroup = ownProcessGroup
    }

    /// Blocks until the child has ended, without reaping it: until `wait()` the
    /// pid stays reserved, so a signal sent in between cannot reach a stranger.
    func awaitExit() throws {
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 {
            guard errno == EINTR else { throw Failure(what: "waitid \(pid)", code: errno) }
        }
    }

    /// Blocks until the child has ended, reaps it and says how it ended.
    func wait() throws -> Termination {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw Failure(what: "waitpid \(pid)", code: errno) }
        }
        return Self.termination(status)
    }

    /// Sends `sig` to the child, or to its whole group when it leads one.
    func signal(_ sig: Int32) {
        _ = ownProcessGroup ? killpg(pid, sig) : kill(pid, sig)
    }

    /// WIFEXITED/WEXITSTATUS/WTERMSIG, which Swift cannot import as macros.
    static func termination(_ status: Int32) -> Termination {
        status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signalled(status & 0x7f)
    }

    // glibc ≥ 2.34 has posix_spawn_file_actions_addclosefrom_np, but its header
    // hides it from Swift; looked up once at run time.
    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let closeFrom: CloseFrom? =
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
            .map { unsafeBitCast($0, to: CloseFrom.self) }

    /// Closes every descriptor above 2 in the child, whether or not it is close-on-exec.
    private static func closeTheRest(_ actions: inout posix_spawn_file_actions_t) throws {
        if let closeFrom {
            let rc = closeFrom(&actions, 3)
            guard rc != 0 else { return }
            throw Failure(what: "posix_spawn_file_actions_addclosefrom_np", code: rc)
        }
        // Older libc: close what is open now (glibc ignores closing one that is gone
        // by then; one opened meanwhile by another thread leaks unless close-on-exec).
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for fd in open.compactMap(Int32.init) where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }
    }
}
