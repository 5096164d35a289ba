import Foundation

/// What is collected from the guest into the run directory when a step
/// fails, so the failure can be studied after the machine is gone: the
/// journal of the current boot and the failed units on systemd guests, the
/// kernel log elsewhere.
public enum Diagnostics {
    /// Collects into `directory`; returns the files written. Never throws: a
    /// guest too broken to answer leaves the console transcript to speak.
    @discardableResult
    public static func collect(from machine: Machine, into directory: URL, prefix: String = "", deadline: Deadline = .after(seconds: 30)) async -> [String] {
        let systemd = (try? await machine.run("test -d /run/systemd/system", deadline: deadline))?.status == 0
        var wanted: [(String, String)] = systemd
            ? [("journal.log", "journalctl --no-pager -o short-monotonic -b"),
               ("failed-units.txt", "systemctl --failed --no-pager"),
               ("boots.txt", "journalctl --no-pager --list-boots")]
            : [("dmesg.log", "dmesg")]
        var written: [String] = []
        if systemd, let boots = try? await machine.run("journalctl --no-pager --list-boots -q | awk '{print $1}'", deadline: deadline), boots.status == 0 {
            // One journal per boot of this machine (the image keeps its journal on disk).
            for offset in boots.stdoutText.split(separator: "\n").compactMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                let n = offset <= 0 ? "\(offset)" : "+\(offset)"
                wanted.append(("journal-boot\(n).log", "journalctl --no-pager -o short-monotonic -b \(offset)"))
            }
        }
        for (file, command) in wanted {
            guard let r = try? await machine.run(command, deadline: deadline) else { break }
            let url = directory.appendingPathComponent(prefix + file)
            if (try? Data(r.stdout + r.stderr).write(to: url)) != nil { written.append(prefix + file) }
        }
        return written
    }
}
