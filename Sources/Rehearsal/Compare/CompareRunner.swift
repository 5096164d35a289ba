import Foundation

/// Boots two generations side by side (each in its own machine, at the same
/// time), probes both, runs the same scenario steps on both, and compares.
public struct CompareRunner: Sendable {
    public struct Options: Sendable {
        public var old: Candidate
        public var new: Candidate
        /// Steps to run on both: each side's generation replaces the system of
        /// the scenario's machine (of those `machines` names, when it has several).
        public var scenario: Runner.Prepared?
        /// Boots per side for the boot-time comparison (the first one is also probed).
        public var boots: Int = 1
        /// Boot one side after the other instead of both at once (for hosts short of memory or cores).
        public var sequential = false
        /// In a scenario with several machines, those each side's generation
        /// replaces (`--machine`; empty: every machine).
        public var machines: [String] = []
        public init(old: Candidate, new: Candidate, scenario: Runner.Prepared? = nil,
                    boots: Int = 1, sequential: Bool = false, machines: [String] = []) {
            self.machines = machines
            self.old = old
            self.new = new
            self.scenario = scenario
            self.boots = boots
            self.sequential = sequential
        }
    }

    public let runner: Runner
    public init(runner: Runner) { self.runner = runner }

    public func compare(_ o: Options, timeout: Double = 1800) async throws -> Comparison {
        let clock = Stopwatch()
        // Build both first (one recipe lock at a time), so the boots really overlap.
        let gOld = try await runner.generation(o.old), gNew = try await runner.generation(o.new)
        _ = try await runner.openHypervisor()
        let deadline = Deadline.after(seconds: timeout)
        let old: Comparison.Side, new: Comparison.Side
        if o.sequential {
            old = try await Self.side(gOld, label: "old", options: o, runner: runner, deadline: deadline)
            new = try await Self.side(gNew, label: "new", options: o, runner: runner, deadline: deadline)
        } else {
            async let a = Self.side(gOld, label: "old", options: o, runner: runner, deadline: deadline)
            async let b = Self.side(gNew, label: "new", options: o, runner: runner, deadline: deadline)
            (old, new) = try await (a, b)
        }
        var c = Comparison(old: old, new: new)
        c.seconds = clock.seconds
        return c
    }

    /// Boots `g` `options.boots` times; the first boot is probed and runs the
    /// steps. Each boot is a `ScenarioRun` of its own (its run directory,
    /// its verdict), so steps are judged exactly as `rehearse run` judges them.
    /// In a scenario with several machines, `g` replaces the system of those
    /// `options.machines` names (default: every machine); the others boot what
    /// the scenario says, so both sides have the same roles. The first
    /// replaced machine is probed and timed; boots after the first boot it alone.
    static func side(_ g: Generation, label: String, options: CompareRunner.Options, runner: Runner, deadline: Deadline) async throws -> Comparison.Side {
        var scenario = options.scenario
            ?? Runner.Prepared(scenario: .empty(machine: MachineSpec(image: g.name, imageLine: 0, memoryMiB: 512, cpus: 1)), generations: [:])
        let replaced = try scenario.scenario.machinesNamed(options.machines)
        for i in scenario.scenario.machines.indices where replaced.contains(scenario.scenario.machines[i].name) {
            scenario.scenario.machines[i].spec.image = g.name
            scenario.scenario.machines[i].spec.system = nil
        }
        let several = scenario.scenario.bootsRoles
        let probed = replaced[0]
        scenario.subject = probed
        scenario.replaced = replaced
        var bootSeconds: [Double] = []
        var snapshot = Snapshot()
        var steps: [StepResult] = []
        var firstDirectory: String?, probedDirectory: String?
        let started = Date()
        var ready: Date?
        for n in 1...max(1, options.boots) {
            var p = scenario
            p.scenario.name = "compare \(label) \(g.name)\(n > 1 ? " boot \(n)" : "")"
            // Boots after the first are there to time booting: they boot for
            // real, and only the machine that is timed.
            if n > 1 {
                if several { p = p.role(probed, network: nil) }
                p.scenario.machine.coldBoot = true
            }
            let run = try ScenarioRun(prepared: p, runner: runner)
            if firstDirectory == nil { firstDirectory = run.directory.path }
            let machines: [String: Machine]
            do {
                if n == 1 {
                    machines = try await run.bootAll(p, generation: g, replacing: Set(replaced), bootCheck: false)
                } else {
                    machines = [probed: try await run.boot(p, generation: g, bootCheck: false, machineName: several ? probed : nil)]
                }
            } catch {
                _ = await run.finish(checkUnits: false)
                throw error
            }
            guard let machine = machines[probed] else {
                _ = await run.finish(checkUnits: false)
                throw RehearsalError.infrastructure("machine \(probed) did not start")
            }
            if probedDirectory == nil { probedDirectory = machine.directory.path }
            // A restored machine's boot time is that of the cold boot its saved state was made from.
            let restored = await machine.restoredFrom
            let readySeconds = await machine.readySeconds
            bootSeconds.append(restored?.coldBootSeconds ?? readySeconds ?? 0)
            if ready == nil { ready = Date() }
            if n == 1 {
                do {
                    // Let start-up settle before probing, so that both sides are seen in the same state.
                    _ = try? await BootCheck().settle(on: machine, deadline: Deadline.after(seconds: 120).earlier(deadline))
                    try await machine.keepRunningState(deadline: Deadline.after(seconds: 120).earlier(deadline))
                    snapshot = try await Probes.snapshot(of: machine, deadline: deadline)
                } catch {
                    _ = await run.finish(checkUnits: false)
                    throw error
                }
                for (i, step) in p.scenario.steps.enumerated() {
                    // The parser made sure every step's machine exists.
                    let on = machines[step.machine ?? p.scenario.machines[0].name] ?? machine
                    steps.append(await run.step(step, on: on, index: i, of: p.scenario.steps.count))
                }
            }
            _ = await run.finish(checkUnits: false)
        }
        return Comparison.Side(generation: g, snapshot: snapshot, bootSeconds: bootSeconds,
                               started: started, ready: ready, steps: steps, runDirectory: firstDirectory,
                               machine: scenario.scenario.hasSeveralMachines ? probed : nil, machineDirectory: probedDirectory)
    }
}
