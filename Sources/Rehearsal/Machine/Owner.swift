import Foundation

/// The rehearse process that started a domain, as recorded in the domain's
/// metadata, and whether that process still lives.
///
/// A PID alone says nothing on a shared `qemu:///system` or a remote
/// libvirt: the PID may belong to another host, to another user (`kill`
/// answers EPERM), or to a process that took the number over. So an owner is
/// a host identity, the PID and the process's start time; a domain is only
/// ever swept when its owner is known to be dead.
///
/// The host identity is `/etc/machine-id` (stable across reboots, unique per
/// installation; `/var/lib/dbus/machine-id`, then the host name, where it is
/// missing) joined with the PID namespace, since a PID means something only
/// in its own namespace (two containers share a machine's machine-id). The
/// boot id is not part of it: a domain on a remote libvirt outlives its
/// owner's reboot and should be sweepable afterwards. It goes with the start
/// time instead, which counts clock ticks since that boot.
public struct Owner: Sendable, Equatable {
    /// When a process started: clock ticks since boot (field 22 of
    /// `/proc/PID/stat`) and the boot they count from.
    public struct StartTime: Sendable, Equatable {
        public var boot: String
        public var ticks: UInt64
        public init(boot: String, ticks: UInt64) {
            self.boot = boot
            self.ticks = ticks
        }
    }

    /// nil for metadata written before owners carried one (only a `pid`).
    public var host: String?
    public var pid: Int32
    public var startTime: StartTime?

    public init(host: String?, pid: Int32, startTime: StartTime?) {
        self.host = host
        self.pid = pid
        self.startTime = startTime
    }

    /// This process.
    public static let current = Owner(host: hostIdentity(), pid: getpid(), startTime: startTime(of: getpid()))

    public enum Liveness: Sendable, Equatable { case alive, dead, unknown }

    /// The metadata attributes (`pid`, `host`, `started`), ready to go into an element.
    public var attributes: String {
        "pid='\(pid)'"
            + (host.map { " host='\(XMLText.escape($0))'" } ?? "")
            + (startTime.map { " started='\(XMLText.escape($0.boot))/\($0.ticks)'" } ?? "")
    }

    /// Reads an owner back from metadata attributes; nil without a usable `pid`.
    public init?(attribute: (String) -> String?) {
        guard let pid = attribute("pid").flatMap(Int32.init), pid > 0 else { return nil }
        self.pid = pid
        host = attribute("host")
        startTime = attribute("started").flatMap { text in
            guard let slash = text.lastIndex(of: "/"), let ticks = UInt64(text[text.index(after: slash)...]) else { return nil }
            return StartTime(boot: String(text[..<slash]), ticks: ticks)
        }
    }

    /// Whether the owning process still runs, asked of this host.
    /// `probe` answers `kill(pid, 0)`'s errno (0 when it succeeds) and
    /// `started` reads a PID's start time; both are injectable for tests.
    public func liveness(here: String = Owner.current.host ?? "",
                         probe: (Int32) -> Int32 = Owner.signalProbe,
                         started: (Int32) -> StartTime? = Owner.startTime(of:)) -> Liveness {
        // Another host's PID must not be probed here at all.
        if let host, host != here { return .unknown }
        let answer = probe(pid)
        return Self.judge(self, probe: answer, started: answer == ESRCH ? nil : started(pid))
    }

    /// The rules, given what this host says of the PID: `probe` is
    /// `kill(pid, 0)`'s errno (0: delivered) and `started` the start time
    /// `/proc` shows for it now (nil when it can't be read). The caller has
    /// made sure a recorded host is this one.
    static func judge(_ owner: Owner, probe: Int32, started: StartTime?) -> Liveness {
        guard owner.host != nil else {
            // Metadata from before owners had a host: only a pid. The old
            // rule, except that EPERM (another user's process) counts as alive.
            return probe == ESRCH ? .dead : .alive
        }
        switch probe {
        case ESRCH:
            return .dead
        case 0, EPERM:
            guard let recorded = owner.startTime else { return .unknown }
            // Another start time: the PID was reused, or the owner ran in an earlier boot.
            if let started, started != recorded { return .dead }
            if started == recorded { return .alive }
            // Unreadable /proc entry (hidepid): a process of another user is taken as alive.
            return probe == EPERM ? .alive : .unknown
        default:
            return .unknown
        }
    }

    /// `kill(pid, 0)`: 0 when the process exists and may be signalled, else errno.
    public static func signalProbe(_ pid: Int32) -> Int32 {
        kill(pid, 0) == 0 ? 0 : errno
    }

    /// Field 22 of `/proc/PID/stat` with this boot's id; nil when it can't be read.
    public static func startTime(of pid: Int32) -> StartTime? {
        guard let boot = bootID(),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return parseStat(stat).map { StartTime(boot: boot, ticks: $0) }
    }

    /// The start time in a `/proc/PID/stat` line. The command name (field 2)
    /// may hold spaces and parentheses, so fields are counted after its last `)`.
    static func parseStat(_ stat: String) -> UInt64? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state), so field 22 is fields[19].
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    static func bootID() -> String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The machine id (or the host name) and the PID namespace.
    static func hostIdentity() -> String {
        let machine = ["/etc/machine-id", "/var/lib/dbus/machine-id"].lazy
            .compactMap { try? String(contentsOfFile: $0, encoding: .utf8) }
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .first { !$0.isEmpty } ?? ProcessInfo.processInfo.hostName
        let namespace = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? "pid:?"
        return "\(machine)/\(namespace)"
    }
}
