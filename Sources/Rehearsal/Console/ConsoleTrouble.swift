import Foundation

/// Console lines that mean the guest is in trouble, so the running step fails
/// at once instead of at its timeout (the checks kola and LAVA make).
public struct ConsoleTrouble: Sendable, Equatable, Codable {
    /// Short name of the check, e.g. "kernel panic".
    public var kind: String
    /// The line that matched.
    public var line: String

    static let checks: [(kind: String, pattern: ConsolePattern)] = [
        ("kernel panic", #"Kernel panic - not syncing"#),
        ("kernel oops", #"\bOops: |\bOops\[#"#),
        ("kernel BUG", #"\bBUG: "#),
        ("kernel warning", #"WARNING: CPU: \d+ PID: \d+ at "#),
        ("call trace", #"\bCall Trace:"#),
        ("general protection fault", #"general protection fault"#),
        ("segfault", #"\bsegfault at [0-9a-f]+ ip "#),
        ("out of memory", #"invoked oom-killer|Out of memory: Killed process"#),
        ("emergency shell", #"You are in emergency mode|Entering emergency mode|Give root password for maintenance|dracut: Refusing to continue"#),
        ("I/O error", #"rejecting I/O to offline device|EXT4-fs error"#),
        // SeaBIOS, on ttyS0 for a firmware boot, once every boot device failed.
        ("no bootable device", #"\bNo bootable device\b"#),
    ].map { ($0.0, try! ConsolePattern($0.1)) }

    /// The start of a report that the guest's CPU got no time for a while: a
    /// soft lockup or an RCU stall. Under emulation on a busy host that is
    /// the host's load, not the guest's bug (a guest that really hangs still
    /// ends its step at the step's deadline), so such a report, and the call
    /// trace that comes with it, is not trouble.
    static let starvation = try! ConsolePattern(#"watchdog: BUG: soft lockup - CPU#\d+ stuck for \d+s!|rcu: INFO: rcu_\w+ (self-)?detected stalls?"#)
    /// How many lines after such a report its dump may take.
    static let starvationReportLines = 80

    /// The first check `line` trips, unless one of `allowed` matches it.
    public static func check(_ line: String, allowed: [ConsolePattern]) -> ConsoleTrouble? {
        guard let hit = checks.first(where: { $0.pattern.matches(line) }) else { return nil }
        if allowed.contains(where: { $0.matches(line) }) { return nil }
        return ConsoleTrouble(kind: hit.kind, line: line)
    }
}
