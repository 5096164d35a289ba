import Foundation

/// The built-in probes `rehearse compare` runs on each booted generation,
/// and how their output becomes a `Snapshot`. Parsing is separate from
/// running so that it can be tested on recorded outputs.
public enum Probes {
    /// What is left out or rewritten because it changes with every boot.
    public static let normalised = [
        "/etc/machine-id and systemd's random seed are not hashed (new on every boot)",
        "process ids and file descriptors are dropped from listening sockets",
        "transient units (sessions, scopes, devices) are not compared",
        "timestamps are never collected; root filesystem usage is rounded to MiB",
    ]

    static let etcExcluded: Set = ["/etc/machine-id", "/etc/.pwd.lock", "/etc/adjtime", "/etc/ld.so.cache~"]

    /// One probe: the guest command and how to read its answer into a snapshot.
    struct Probe: Sendable {
        let name: String
        let command: String
        /// Whether a failure (a status other than 0 or 3, "not in this guest")
        /// is tried again: systemctl's D-Bus call times out when a loaded
        /// host leaves systemd busy, and an answer a moment later is the real one.
        var retried = false
        let read: @Sendable (CommandResult, inout Snapshot) -> Void

        init(name: String, command: String, retried: Bool = false, read: @escaping @Sendable (CommandResult, inout Snapshot) -> Void) {
            (self.name, self.command, self.retried, self.read) = (name, command, retried, read)
        }
    }

    static let all: [Probe] = [
        Probe(name: "os-release", command: "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release") { r, s in
            s.osRelease = parseOSRelease(r.stdoutText)
        },
        Probe(name: "kernel", command: "uname -r") { r, s in
            s.kernel = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        },
        Probe(name: "packages", command: """
            found=; if command -v dpkg-query >/dev/null; then found=1; echo '#dpkg'; dpkg-query -W -f='${db:Status-Abbrev}\\t${Package}\\t${Version}\\n'; fi; \
            if command -v rpm >/dev/null; then found=1; echo '#rpm'; rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'; fi; \
            if [ -e /run/current-system ] && command -v nix-store >/dev/null; then found=1; echo '#nix'; nix-store -q --requisites /run/current-system | sed 's|^/nix/store/[a-z0-9]*-||'; fi; \
            [ -n "$found" ] || echo 'no dpkg, rpm or nix-store in the guest' >&2
            """) { r, s in
            if r.stdoutText.isEmpty { s.skipped.append("packages: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))") }
            s.packages = parsePackages(r.stdoutText)
        },
        Probe(name: "units", command: """
            command -v systemctl >/dev/null || { echo 'no systemd in the guest' >&2; exit 3; }; \
            systemctl list-units --all --full --no-legend --plain --type=service,socket,timer,target,mount,path; echo '#files'; \
            systemctl list-unit-files --full --no-legend --plain --type=service,socket,timer,target,mount,path
            """, retried: true) { r, s in
            if r.status != 0 { s.skipped.append("units: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))"); return }
            s.units = parseUnits(r.stdoutText)
        },
        Probe(name: "ports", command: """
            command -v ss >/dev/null || { echo 'no ss (iproute2) in the guest' >&2; exit 3; }; ss -Htulnp
            """, retried: true) { r, s in
            if r.status != 0 { s.skipped.append("ports: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))"); return }
            s.ports = parsePorts(r.stdoutText)
        },
        Probe(name: "etc", command: "find /etc -xdev -type f -print0 | xargs -0 sha256sum 2>/dev/null") { r, s in
            s.etc = parseHashes(r.stdoutText)
        },
        Probe(name: "boot timing", command: "command -v systemd-analyze >/dev/null && systemd-analyze time 2>/dev/null") { r, s in
            s.bootPhases = parseSystemdTime(r.stdoutText)
            if s.bootPhases.isEmpty { s.skipped.append("systemd boot timing: systemd-analyze gave none") }
        },
        Probe(name: "disk usage", command: "df -P -k / | tail -1") { r, s in
            let f = r.stdoutText.split(whereSeparator: { $0 == " " || $0 == "\n" })
            if f.count >= 3, let size = Int64(f[1]), let used = Int64(f[2]) {
                s.rootSizeBytes = size * 1024
                s.rootUsedBytes = (used * 1024 / (1 << 20)) * (1 << 20)
            } else {
                s.skipped.append("disk usage: df gave nothing usable")
            }
        },
    ]

    /// Runs every probe on `machine`.
    public static func snapshot(of machine: Machine, deadline: Deadline) async throws -> Snapshot {
        let clock = Stopwatch()
        var s = Snapshot()
        for p in all {
            let limit = Deadline.after(seconds: 120).earlier(deadline)
            var r = try await machine.run(p.command, deadline: limit)
            var attempts = 1
            while p.retried, r.status != 0, r.status != 3, attempts < 3, !limit.hasPassed {
                r = try await machine.run(p.command, deadline: limit)
                attempts += 1
            }
            p.read(r, &s)
        }
        s.probeSeconds = clock.seconds
        return s
    }

    static func parseOSRelease(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            var v = String(line[line.index(after: eq)...])
            if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f { v = String(v.dropFirst().dropLast()) }
            out[String(line[..<eq])] = v
        }
        return out
    }

    static func parsePackages(_ text: String) -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        var manager = ""
        for line in text.split(separator: "\n") {
            if line.hasPrefix("#") { manager = String(line.dropFirst()); continue }
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch manager {
            case "dpkg":
                // Only installed packages (status "ii", or "iF"/"iU" half done ones are worth seeing too).
                guard f.count == 3, f[0].hasPrefix("i") else { continue }
                out["dpkg", default: [:]][f[1]] = f[0].trimmingCharacters(in: .whitespaces) == "ii" ? f[2] : "\(f[2]) (\(f[0].trimmingCharacters(in: .whitespaces)))"
            case "rpm":
                guard f.count == 2 else { continue }
                out["rpm", default: [:]][f[0]] = f[1]
            case "nix":
                // name-version: split at the first "-" followed by a digit.
                let s = String(line)
                if let r = s.range(of: #"-[0-9]"#, options: .regularExpression) {
                    out["nix", default: [:]][String(s[..<r.lowerBound])] = String(s[s.index(after: r.lowerBound)...])
                } else {
                    out["nix", default: [:]][s] = ""
                }
            default: continue
            }
        }
        return out
    }

    static func parseUnits(_ text: String) -> [String: UnitState] {
        var out: [String: UnitState] = [:]
        var files = false
        for line in text.split(separator: "\n") {
            if line == "#files" { files = true; continue }
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 2 else { continue }
            let name = f[0]
            // Instances tied to one boot (sessions, per-device units) are not the system's definition.
            if name.hasPrefix("session-") || name.contains("@dev-") || name.hasPrefix("dev-") || name.hasPrefix("sys-") { continue }
            if files {
                guard var u = out[name] else { out[name] = UnitState(active: "inactive", enabled: f[1]); continue }
                u.enabled = f[1]
                out[name] = u
            } else if f.count >= 3 {
                // UNIT LOAD ACTIVE SUB …: "not-found" units are references, not units.
                if f[1] == "not-found" { continue }
                out[name] = UnitState(active: f[2], enabled: out[name]?.enabled)
            }
        }
        return out
    }

    static func parsePorts(_ text: String) -> Set<String> {
        var out: Set<String> = []
        for line in text.split(separator: "\n") {
            let f = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard f.count >= 5 else { continue }
            var process = ""
            if let users = f.first(where: { $0.hasPrefix("users:") }),
               let a = users.range(of: "((\""), let b = users.range(of: "\"", range: a.upperBound..<users.endIndex) {
                process = String(users[a.upperBound..<b.lowerBound])
            }
            out.insert([f[0], f[4], process].joined(separator: " ").trimmingCharacters(in: .whitespaces))
        }
        return out
    }

    static func parseHashes(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard line.count > 66 else { continue }
            let hash = String(line.prefix(64))
            let path = String(line.dropFirst(66))
            if etcExcluded.contains(path) { continue }
            out[path] = hash
        }
        return out
    }

    /// "Startup finished in 1.2s (firmware) + 4.903s (kernel) + 2.1s (initrd) + 10.766s (userspace) = 15.670s"
    static func parseSystemdTime(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Startup finished") }) else { return out }
        let re = try! NSRegularExpression(pattern: #"((?:\d+min )?[\d.]+m?s) \((\w+)\)"#)
        let s = String(line)
        for m in re.matches(in: s, range: NSRange(s.startIndex..., in: s)) {
            guard let t = Range(m.range(at: 1), in: s), let n = Range(m.range(at: 2), in: s) else { continue }
            out[String(s[n])] = seconds(String(s[t]))
        }
        return out
    }

    /// "1min 2.5s" → 62.5, "850ms" → 0.85.
    static func seconds(_ text: String) -> Double {
        var total = 0.0
        for part in text.split(separator: " ") {
            if part.hasSuffix("min"), let v = Double(part.dropLast(3)) { total += v * 60 }
            else if part.hasSuffix("ms"), let v = Double(part.dropLast(2)) { total += v / 1000 }
            else if part.hasSuffix("s"), let v = Double(part.dropLast()) { total += v }
        }
        return total
    }
}
