import Foundation

/// Runs one step on a running machine and judges it.
///
/// Separate from `Runner` so that tests can run steps against one shared,
/// already-booted machine.
public enum StepExecutor {
    /// What steps need besides the machine: the boot check and a way to find generations.
    public struct Context: Sendable {
        public var bootCheck = BootCheck()
        /// Finds (building if needed) a generation named in a `boot:` step.
        public var generation: @Sendable (String) async throws -> Generation = { name in
            throw RehearsalError.scenario("no generation \(name) is known here")
        }
        /// The scenario's deadline and timeout, named when a step's timeout is cut short by it.
        public var scenarioDeadline: (deadline: Deadline, seconds: Double)?
        public init(bootCheck: BootCheck = BootCheck(), generation: (@Sendable (String) async throws -> Generation)? = nil) {
            self.bootCheck = bootCheck
            if let generation { self.generation = generation }
        }
    }

    /// Runs `step` with `deadline` (already bounded by the scenario's), and
    /// judges it, honouring `expect_failure`.
    public static func execute(_ step: Step, on machine: Machine, deadline: Deadline, context: Context = Context()) async -> StepResult {
        var r = await perform(step, on: machine, deadline: deadline, context: context)
        guard let why = step.expectedFailure else { return r }
        r.expectedFailure = why
        switch r.outcome {
        case .failed:
            r.outcome = .expectedFailure
        case .passed:
            r.outcome = .failed
            r.message = "passed, but it is marked as expected to fail (\(why))"
        default: break
        }
        return r
    }

    static func perform(_ step: Step, on machine: Machine, deadline: Deadline, context: Context) async -> StepResult {
        // The units this step is expected to break may be failed after its boot too.
        var bootCheck = context.bootCheck
        bootCheck.allowFailed.formUnion(step.allowFailed)
        let clock = Stopwatch()
        var r = StepResult(name: step.name, kind: step.kind, line: step.line, command: step.command,
                           outcome: .passed, seconds: 0)
        do {
            switch step.action {
            case .succeed(let c):
                let out = try await machine.run(c, deadline: deadline)
                record(out, into: &r)
                if out.status != 0 { fail(&r, "exit status \(out.status), expected 0") }
            case .fail(let c):
                let out = try await machine.run(c, deadline: deadline)
                record(out, into: &r)
                if out.status == 0 { fail(&r, "exit status 0, expected non-zero") }
            case .run(let c, let expect):
                let out = try await machine.run(c, deadline: deadline)
                record(out, into: &r)
                let problems = expect.mismatches(out)
                if !problems.isEmpty { fail(&r, problems.joined(separator: "; ")) }
            case .waitUntilSucceeds(let c), .waitUntilFails(let c):
                let wantZero: Bool = { if case .waitUntilSucceeds = step.action { return true } else { return false } }()
                try await retry(c, wantZero: wantZero, on: machine, deadline: deadline, into: &r)
            case .waitForUnit(let unit):
                try await waitForUnit(unit, on: machine, deadline: deadline, into: &r)
            case .waitForOpenPort(let port):
                // Listening sockets from /proc (state 0A), so the guest needs no ss or netstat.
                let hex = String(format: "%04X", port)
                let check = "grep -qiE '^ *[0-9]+: [0-9A-F]+:\(hex) [0-9A-F]+:[0-9A-F]+ 0A ' /proc/net/tcp /proc/net/tcp6 2>/dev/null"
                do {
                    try await retry(check, wantZero: true, on: machine, deadline: deadline, into: &r)
                } catch RehearsalError.Code.timeout {
                    throw RehearsalError.timeout("timed out after \(r.attempts ?? 0) attempts: nothing listens on TCP port \(port)")
                }
                r.stdout = nil
            case .reboot(let c):
                let waited = await machine.slotWaitSeconds
                let ids = try await machine.reboot(command: c, deadline: deadline)
                r.stdout = "boot id \(ids.before) -> \(ids.after)\n"
                try await bootCheck.run(on: machine, deadline: deadline.later(by: await machine.slotWaitSeconds - waited))
            case .crash:
                let waited = await machine.slotWaitSeconds
                let ids = try await machine.powerCycle(deadline: deadline)
                r.stdout = "power cut; boot id \(ids.before) -> \(ids.after)\n"
                try await bootCheck.run(on: machine, deadline: deadline.later(by: await machine.slotWaitSeconds - waited))
            case .waitForConsole(let p):
                let matched = try await machine.waitForConsole(p, deadline: deadline)
                r.stdout = matched
            case .boot(let name):
                let next: Generation
                do { next = try await context.generation(name) } catch let e as RehearsalError where e.code.kind == .badInput {
                    throw RehearsalError.infrastructure(e.description, underlying: e)
                }
                let before = await machine.generation.name
                let waited = await machine.slotWaitSeconds
                try await machine.boot(next, deadline: deadline)
                r.stdout = "\(before) -> \(next.name) (\(next.shortDigest)), \(next.boot.rawValue) boot\n"
                try await bootCheck.run(on: machine, deadline: deadline.later(by: await machine.slotWaitSeconds - waited))
            case .checkpoint(let memory):
                let n = try await machine.checkpoint(memory: memory, deadline: deadline)
                r.stdout = "checkpoint \(n): \(await machine.generation.name) and its disk\(memory ? ", memory and devices" : "") as they are now\n"
            case .rollback:
                let waited = await machine.slotWaitSeconds
                let what = try await machine.rollback(deadline: deadline)
                r.stdout = "rolled back to \(what)\n"
                try await bootCheck.run(on: machine, deadline: deadline.later(by: await machine.slotWaitSeconds - waited))
            case .pause:
                // Reached only when the run does not pause (nobody at a terminal, no --step).
                r.stdout = "not paused: the run is not at a terminal (give --step to pause)\n"
            case .link(let up, let network):
                let card = try await machine.setLink(up: up, network: network)
                r.stdout = "\(card.network) (\(card.address)): link \(up ? "up" : "down")\n"
            case .booted(let generation, let kernel):
                let out = try await machine.run("uname -r", deadline: deadline)
                let release = out.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                let g = await machine.generation
                r.stdout = "generation \(g.name) (\(g.shortDigest)), kernel \(release)\n"
                var problems: [String] = []
                if let generation, generation != g.name { problems.append("booted generation is \(g.name), expected \(generation)") }
                if let kernel, !kernel.matchesWhole(release) { problems.append("running kernel is \(release), expected /\(kernel.source)/") }
                if !problems.isEmpty { fail(&r, problems.joined(separator: "; ")) }
            }
        } catch let e as RehearsalError {
            await judge(e, step: step, machine: machine, context: context, into: &r)
            if let evidence = e.evidence { r.stdout = evidence }
        } catch {
            r.outcome = .infrastructure
            r.message = "\(error)"
        }
        r.seconds = clock.seconds
        return r
    }

    /// Polls a systemd unit until it is active. A unit that enters `failed`
    /// fails the step at once, with its status and last journal lines.
    static func waitForUnit(_ unit: String, on machine: Machine, deadline: Deadline, into r: inout StepResult) async throws {
        let q = ShellProtocol.shellQuote(unit)
        let probe = "command -v systemctl >/dev/null || { echo 'no systemctl in the guest' >&2; exit 2; }; systemctl show -p ActiveState --value \(q)"
        var last = ""
        try await poll(on: machine, deadline: deadline, into: &r) { _, attemptDeadline, r in
            let out = try await machine.run(probe, deadline: attemptDeadline)
            guard out.status == 0 else {
                record(out, into: &r)
                throw RehearsalError.scenario("cannot query \(unit): \(out.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            last = out.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            if last == "active" { r.stdout = "\(unit) is active\n"; return true }
            if last == "failed" {
                let why = try await machine.run("systemctl status --no-pager --lines=0 \(q); journalctl --no-pager -o short-monotonic -n 20 -u \(q)", deadline: .after(seconds: 30))
                record(why, into: &r)
                throw RehearsalError.scenario("\(unit) failed")
            }
            return false
        } timedOut: { attempts in
            "timed out after \(attempts) attempts: \(unit) is still \(last.isEmpty ? "unknown" : last)"
        }
    }

    /// Runs `command` until its status is (non-)zero; each try may use the rest of the deadline.
    static func retry(_ command: String, wantZero: Bool, on machine: Machine, deadline: Deadline, into r: inout StepResult) async throws {
        var status: Int32 = 0
        try await poll(on: machine, deadline: deadline, into: &r) { attempts, attemptDeadline, r in
            let out: CommandResult
            do { out = try await machine.run(command, deadline: attemptDeadline) } catch RehearsalError.Code.timeout {
                throw RehearsalError.timeout("timed out after \(attempts) attempts of `\(command)`")
            }
            record(out, into: &r)
            status = out.status
            return (out.status == 0) == wantZero
        } timedOut: { attempts in
            "timed out after \(attempts) attempts: `\(command)` still exits with status \(status)"
        }
    }

    /// Calls `attempt` until it returns true, pausing from 0.1 s, doubling up
    /// to 1 s, between tries; counts the tries in `r.attempts`. When the next
    /// pause would pass the deadline, fails with `timedOut(attempts)`.
    ///
    /// An attempt may run `attemptGrace` seconds past the deadline (the
    /// deadline it is given): one that started just before the deadline
    /// finishes and is judged, instead of being stopped with ^C mid-way.
    static func poll(on machine: Machine, deadline: Deadline, into r: inout StepResult,
                     _ attempt: (Int, Deadline, inout StepResult) async throws -> Bool, timedOut: (Int) -> String) async throws {
        let attemptDeadline = deadline.later(by: attemptGrace)
        var pause = 0.1
        var attempts = 0
        while true {
            attempts += 1
            r.attempts = attempts
            if try await attempt(attempts, attemptDeadline, &r) { return }
            if deadline.remaining < pause { throw RehearsalError.timeout(timedOut(attempts)) }
            do {
                _ = try await machine.io.wait(until: .after(seconds: pause), what: "waiting to retry") { _ -> Bool? in nil }
            } catch RehearsalError.Code.timeout {}
            pause = min(pause * 2, 1)
        }
    }

    static func record(_ out: CommandResult, into r: inout StepResult) {
        r.stdout = out.stdoutText
        r.stderr = out.stderrText
        r.exitStatus = out.status
    }

    static func fail(_ r: inout StepResult, _ message: String) {
        r.outcome = .failed
        r.message = message
    }

    /// Turns a machine error into the step's outcome, quoting the console.
    static func judge(_ e: RehearsalError, step: Step, machine: Machine, context: Context, into r: inout StepResult) async {
        r.outcome = e.outcome
        r.message = e.description
        if e.code == .timeout {
            r.message! += " (step timeout \(format(step.timeout ?? step.defaultTimeout)) s)"
            if let (deadline, seconds) = context.scenarioDeadline, deadline.hasPassed {
                r.message! += "; the scenario's timeout of \(format(seconds)) s has passed"
            }
        }
        if case .trouble(let t)? = machine.io.firstIncident {
            await machine.io.settle(seconds: 0.5)
            r.console = machine.io.linesAround(t, 20)
        } else {
            r.console = machine.io.consoleTail(10)
        }
    }

    /// Seconds an attempt of a waiting step may run past the step's deadline.
    static let attemptGrace = 5.0

    static func format(_ s: Double) -> String {
        s == s.rounded() ? String(Int(s)) : String(format: "%.1f", s)
    }
}
