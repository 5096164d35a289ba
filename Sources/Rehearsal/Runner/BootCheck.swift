import Foundation

/// The check made after every boot of a systemd guest (the first boot, and
/// after `reboot` and `crash` steps): `systemctl is-system-running` settles,
/// and no unit has failed, apart from the units a scenario allows.
///
/// Guests without systemd are not checked. A scenario switches the check off
/// with `boot_check: false`, or tunes it:
///
///     boot_check:
///       allow_failed: [systemd-networkd-wait-online.service]
///       timeout: 120
public struct BootCheck: Sendable {
    public var enabled = true
    /// Units whose failure is expected.
    public var allowFailed: Set<String> = []
    /// Seconds for the system to settle.
    public var timeout: Double = 120

    public init() {}

    /// Waits until systemd's start-up has finished (running, degraded or
    /// worse). Returns false at once for a guest without systemd; throws when
    /// systemd never settles. `rehearse compare` settles both sides this way
    /// before probing them, without judging.
    @discardableResult
    public func settle(on machine: Machine, deadline limit: Deadline) async throws -> Bool {
        let probe = try await machine.run("test -d /run/systemd/system", deadline: limit)
        guard probe.status == 0 else { return false }
        let settle = Int(max(1, limit.remaining.rounded(.down)))
        let state = try await machine.run("timeout \(settle) systemctl is-system-running --wait", deadline: limit)
        let word = state.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        if word != "running" && word != "degraded" {
            throw RehearsalError.scenario("after boot: systemd did not settle within \(settle) s (state \(word.isEmpty ? "unknown" : word))")
        }
        return true
    }

    /// Runs the check; throws a scenario failure naming the failed units,
    /// with their status and journal as its evidence, or a scenario failure naming the
    /// state systemd never left.
    public func run(on machine: Machine, deadline: Deadline) async throws {
        guard enabled else { return }
        let limit = Deadline.after(seconds: timeout).earlier(deadline)
        guard try await settle(on: machine, deadline: limit) else { return }
        try await checkUnits(on: machine, when: "after boot", allowing: allowFailed, deadline: limit)
    }

    /// Fails, naming them, when units other than `allowed` are in the
    /// failed state; the evidence is each one's status and journal lines.
    /// A guest without systemd has nothing to check.
    func checkUnits(on machine: Machine, when: String, allowing allowed: Set<String>, deadline: Deadline) async throws {
        let failed = try await machine.run("test -d /run/systemd/system || exit 0; systemctl --failed --no-legend --plain | awk '{print $1}'",
                                           deadline: deadline)
        let expected = Set(await machine.generation.expectedFailures ?? [])
        let units = failed.stdoutText.split(separator: "\n").map(String.init).filter { !$0.isEmpty && !allowed.contains($0) && !expected.contains($0) }
        guard units.isEmpty else {
            let quoted = units.map(ShellProtocol.shellQuote).joined(separator: " ")
            let why = try? await machine.run("for u in \(quoted); do systemctl status --no-pager --lines=0 \"$u\"; journalctl --no-pager -o short-monotonic -b -n 15 -u \"$u\"; echo; done",
                                       deadline: .after(seconds: 30))
            throw RehearsalError(.unitFailed, "\(when): \(units.count == 1 ? "a unit" : "units") failed: \(units.joined(separator: ", "))",
                                 evidence: why?.stdoutText ?? "")
        }
    }

    /// The check at the end of a scenario: a unit that failed while the
    /// steps ran (a service up at `wait_for_unit` that died seconds later)
    /// fails the scenario though no step asserted it, unless this check's
    /// `allowFailed` or a step's own `allow_failed` lists it. It runs when
    /// every step passed, on every machine still running.
    public func checkAtEnd(on machine: Machine, allowing stepAllowed: Set<String>) async throws {
        guard enabled else { return }
        // Its own time, not what is left of the scenario's: steps that passed
        // just before the deadline must not turn into a timeout here.
        try await checkUnits(on: machine, when: "at the end of the scenario", allowing: allowFailed.union(stepAllowed),
                             deadline: Deadline.after(seconds: timeout))
    }
}
