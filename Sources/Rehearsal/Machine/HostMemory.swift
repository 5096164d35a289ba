import Foundation

/// The host's free memory, checked before a machine starts, so that a host
/// that cannot hold one more guest gives an infrastructure failure with that
/// reason instead of a QEMU that never comes up or an OOM-killed harness.
public enum HostMemory {
    /// What QEMU needs beyond the guest's RAM (its own code, TCG's translation cache).
    static let overheadMiB = 96

    /// MemAvailable from /proc/meminfo, in MiB; nil where it can't be read.
    public static func availableMiB(meminfo: String? = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) -> Int? {
        guard let meminfo else { return nil }
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let kib = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kib.map { $0 / 1024 }
        }
        return nil
    }

    /// Throws an infrastructure failure when a guest of `needMiB` can't fit.
    static func check(needMiB: Int, availableMiB: Int? = availableMiB()) throws {
        guard let free = availableMiB else { return }
        if needMiB + overheadMiB > free {
            throw RehearsalError(.outOfMemory, "the host is out of memory: a machine of \(needMiB) MiB needs about \(needMiB + overheadMiB) MiB and only \(free) MiB is available")
        }
    }
}
