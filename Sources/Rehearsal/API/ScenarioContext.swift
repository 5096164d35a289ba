import Foundation

/// A scenario written in Swift, as it runs: the `Runner.run(_:…)` body gets
/// one, declares its machines with it and drives them.
///
///     let result = await runner.run("upgrade-app") { scenario in
///         let m = try await scenario.machine(MachineDeclaration(.generation("debian")))
///         try await m.waitForUnit("rehearse-demo")
///         try await m.succeed("apt-get install -y rehearse-demo=2.0")
///     }
///
/// Every call on a machine is a step, judged and reported exactly as the
/// same step in a YAML scenario (run directory, JUnit, JSON, diagnostics on
/// failure); a step that does not pass throws `StepFailure`, which ends the
/// scenario. Every machine is destroyed when the body returns or throws, or
/// when its task is cancelled.
public struct ScenarioContext: Sendable {
    let run: ScenarioRun
    let base: Runner.Prepared

    /// The run's directory: transcripts, results and diagnostics go here.
    public var directory: URL { run.directory }

    /// Builds what `declaration` names (if needed), boots it and waits until
    /// its shell answers and the boot check passed. `name` tells machines of
    /// one scenario apart (domain names, transcripts in `directory/NAME/`).
    public func machine(_ declaration: MachineDeclaration, name: String? = nil, line: Int = #line) async throws -> ScenarioMachine {
        var scenario = base.scenario
        scenario.machine = declaration.spec(line: line)
        var prepared: Runner.Prepared
        do {
            prepared = try Runner.prepare(scenario)
        } catch let e as RehearsalError {
            await run.fail(e.outcome, e.description)
            throw e
        }
        // Machines declared one by one: the first to boot is the result's.
        prepared.subject = nil
        let machine = try await run.boot(prepared, machineName: name)
        return ScenarioMachine(run: run, machine: machine, name: name ?? "machine", file: scenario.file)
    }
}

extension ScenarioContext {
    /// Boots several machines at once, on private networks as YAML's
    /// `machines:` and `networks:` give them, and waits until all are ready;
    /// they are returned by name. Every machine is on `networks` (default:
    /// one network, `default`) unless its declaration names its own; the
    /// machine declared `m`th is `10.0.n.m` on the `n`th network, and the
    /// others reach it by its name.
    ///
    ///     let m = try await scenario.machines(["server": MachineDeclaration(.generation("tiny")),
    ///                                          "client": MachineDeclaration(.generation("tiny"))])
    ///     try await m["client"]!.succeed("wget -q -O - http://server:8080/")
    public func machines(_ declarations: KeyValuePairs<String, MachineDeclaration>, networks: [String] = [NetworkSpec.defaultName],
                         line: Int = #line) async throws -> [String: ScenarioMachine] {
        var scenario = base.scenario
        scenario.machines = declarations.map { name, d in MachineRole(name: name, line: line, spec: d.spec(line: line), networks: d.networks) }
        scenario.networks = networks.map { NetworkSpec(name: $0, line: line) }
        let prepared: Runner.Prepared
        do {
            for role in scenario.machines {
                for n in role.networks where !networks.contains(n) {
                    throw RehearsalError.badScenario(file: scenario.file, line: line, "machine `\(role.name)` joins network `\(n)`, which is not among \(networks)")
                }
            }
            prepared = try Runner.prepare(scenario)
        } catch let e as RehearsalError {
            await run.fail(e.outcome, e.description)
            throw e
        }
        let booted = try await run.bootAll(prepared)
        return booted.reduce(into: [:]) { out, entry in
            out[entry.key] = ScenarioMachine(run: run, machine: entry.value, name: entry.key, file: scenario.file)
        }
    }
}

/// A step that did not pass, thrown by `ScenarioMachine`'s calls. Its result
/// is already recorded in the scenario's; catching it does not undo that
/// (later steps are skipped, as in a YAML scenario).
public struct StepFailure: Error, Sendable, CustomStringConvertible {
    public let result: StepResult
    public var description: String { "`\(result.name)` (line \(result.line)): \(result.message ?? result.outcome.rawValue)" }
}

/// A machine of a running scenario, driven with the YAML steps' vocabulary.
/// Each call is one step; `name:` labels it in reports (default: the command).
public struct ScenarioMachine: Sendable {
    let run: ScenarioRun
    let machine: Machine
    /// The machine's name in its scenario.
    public let name: String
    let file: String
    /// Units the steps of this value may leave failed (`allowingFailed`).
    var allowFailed: Set<String> = []

    /// The same machine, whose steps may leave `units` failed (".service"
    /// implied), as YAML's per-step `allow_failed:`: the boot checks after
    /// those steps and the check at the scenario's end let them be.
    ///
    ///     try await machine.allowingFailed("db").succeed("systemctl stop db && false")
    public func allowingFailed(_ units: String...) -> ScenarioMachine {
        var m = self
        m.allowFailed.formUnion(units.map { $0.contains(".") ? $0 : $0 + ".service" })
        return m
    }

    private func step(_ action: Step.Action, _ name: String?, _ timeout: Double?, _ line: Int, expectFailure: String? = nil) async throws -> StepResult {
        var s = Step(name: name ?? "", line: line, timeout: timeout, action: action, expectedFailure: expectFailure)
        if s.name.isEmpty { s.name = s.command ?? s.kind }
        s.allowFailed = allowFailed
        let r = await run.step(s, on: machine)
        guard r.outcome == .passed || r.outcome == .expectedFailure else { throw StepFailure(result: r) }
        return r
    }

    private static func output(_ r: StepResult) -> CommandResult {
        CommandResult(stdout: Array((r.stdout ?? "").utf8), stderr: Array((r.stderr ?? "").utf8), status: r.exitStatus ?? 0)
    }

    /// Runs `command`; its exit status must be 0. Returns its stdout.
    @discardableResult
    public func succeed(_ command: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws -> String {
        try await step(.succeed(command), name, timeout, line).stdout ?? ""
    }

    /// Runs `command`; its exit status must not be 0.
    public func fail(_ command: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.fail(command), name, timeout, line)
    }

    /// Runs `command` and returns stdout, stderr and status; `expect` (optional) must hold.
    @discardableResult
    public func run(_ command: String, expect: Expectation = Expectation(), name: String? = nil, timeout: Double? = nil,
                    line: Int = #line) async throws -> CommandResult {
        Self.output(try await step(.run(command, expect), name, timeout, line))
    }

    /// Retries `command` (0.1 s, doubling to 1 s) until it exits with 0.
    public func waitUntilSucceeds(_ command: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.waitUntilSucceeds(command), name, timeout, line)
    }

    /// Retries `command` until it exits with a non-zero status.
    public func waitUntilFails(_ command: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.waitUntilFails(command), name, timeout, line)
    }

    /// Waits until a systemd unit is active (".service" implied); fails at once if it fails.
    public func waitForUnit(_ unit: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.waitForUnit(unit), name, timeout, line)
    }

    /// Waits until something listens on TCP `port`.
    public func waitForOpenPort(_ port: Int, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.waitForOpenPort(port), name, timeout, line)
    }

    /// Waits until the serial console shows a line matching `regex`; returns the matched text.
    @discardableResult
    public func waitForConsole(_ regex: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws -> String {
        let pattern: ConsolePattern
        do { pattern = try ConsolePattern(regex) } catch {
            throw StepFailure(result: StepResult(name: name ?? regex, kind: "wait_for_console", line: line, outcome: .failed, seconds: 0,
                                                 message: "not a regular expression: /\(regex)/"))
        }
        return try await step(.waitForConsole(pattern), name, timeout, line).stdout ?? ""
    }

    /// The guest reboots itself with `command`; waits for the new boot and its shell, then the boot check.
    public func reboot(_ command: String = "reboot", name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.reboot(command), name, timeout, line)
    }

    /// Cuts the power and boots again from the same disk.
    public func crash(name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.crash, name, timeout, line)
    }

    /// Keeps the disk state and the booted generation as they are now; with
    /// `memory`, the running machine too, so that `rollback` resumes it.
    public func checkpoint(memory: Bool = false, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.checkpoint(memory: memory), name, timeout, line)
    }

    /// Boots the latest checkpoint (or the generation before the last `boot`).
    public func rollback(name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.rollback, name, timeout, line)
    }

    /// Powers off cleanly and boots `generation` from the same disk.
    public func boot(_ generation: String, name: String? = nil, timeout: Double? = nil, line: Int = #line) async throws {
        _ = try await step(.boot(generation), name, timeout, line)
    }

    /// Stops here for a person (`rehearse attach`, then `rehearse continue`)
    /// when the program runs at a terminal or with `--step`; else goes on.
    public func pause(_ note: String? = nil, name: String? = nil, line: Int = #line) async throws {
        _ = try await step(.pause(note), name, nil, line)
    }

    /// Cuts this machine's link to `network` (nil: its only one) while it
    /// runs, as YAML's `link_down:`; `linkUp` restores it.
    public func linkDown(network: String? = nil, name: String? = nil, line: Int = #line) async throws {
        _ = try await step(.link(up: false, network: network), name, nil, line)
    }

    /// Restores this machine's link to `network` (nil: its only one), as YAML's `link_up:`.
    public func linkUp(network: String? = nil, name: String? = nil, line: Int = #line) async throws {
        _ = try await step(.link(up: true, network: network), name, nil, line)
    }

    /// Asserts what is booted: the generation's name and/or the kernel (a regex over all of `uname -r`).
    public func assertBooted(generation: String? = nil, kernel: String? = nil, name: String? = nil, line: Int = #line) async throws {
        let k = try kernel.map { try ConsolePattern($0) }
        _ = try await step(.booted(generation: generation, kernel: k), name, nil, line)
    }
}

extension Runner {
    /// Runs a scenario written in Swift: `body` declares machines with its
    /// context and drives them. Never throws: the result holds the verdict,
    /// decided as for a YAML scenario; a step failure ends the body; an
    /// error of the body's own fails the scenario with that error.
    public func run(_ name: String, file: String = #filePath, timeout: Double = Scenario.defaultTimeout,
                    bootCheck: BootCheck = BootCheck(), allowConsole: [ConsolePattern] = [],
                    _ body: @Sendable (ScenarioContext) async throws -> Void) async -> ScenarioResult {
        var scenario = Scenario.empty(machine: MachineSpec(image: "(declared in code)", imageLine: 0,
                                                           memoryMiB: MachineSpec.defaultMemoryMiB, cpus: 1),
                                      name: name, timeout: timeout)
        scenario.file = file
        scenario.bootCheck = bootCheck
        scenario.allowConsole = allowConsole
        let prepared = Prepared(scenario: scenario, generations: [:])
        let run: ScenarioRun
        do {
            run = try ScenarioRun(prepared: prepared, runner: self)
        } catch {
            return ScenarioResult(name: name, file: file, outcome: .infrastructure, message: "\(error)", steps: [], seconds: 0, startedAt: Date())
        }
        do {
            try await body(ScenarioContext(run: run, base: prepared))
            if Task.isCancelled { await run.fail(.interrupted, "cancelled") }
        } catch is StepFailure {
            // Already recorded by the step.
        } catch let e as RehearsalError {
            await run.fail(e.outcome, "\(e)")
        } catch is CancellationError {
            await run.fail(.interrupted, "cancelled")
        } catch {
            await run.fail(.failed, "the scenario threw: \(error)")
        }
        return await run.finish()
    }
}
