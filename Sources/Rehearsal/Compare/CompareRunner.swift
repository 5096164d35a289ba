import Foundation

/// Boots two generations side by side (each in its own machine, at the same
/// time), probes both, runs the same scenario steps on both, and compares.
public struct CompareRunner: Sendable {
    public struct Options: Sendable {
        public var old: Candidate
        public var new: Candidate
        /// Steps to run on both (the scenario's `machine.generation` is replaced by each side's).
        public var scenario: Runner.Prepared?
        /// Boots per side for the boot-time comparison (the first one is also probed).
        public var boots: Int = 1
        /// Boot one side after the other instead of both at once (for hosts short of memory or cores).
        public var sequential = false
        public init(old: Candidate, new: Candidate, scenario: Runner.Prepared? = nil,
                    boots: Int = 1, sequential: Bool = false) {
            self.old = old
            self.new = new
            self.scenario = scenario
            self.boots = boots
            self.sequential = sequential
        }
    }

    public let runner: Runner
    public init(runner: Runner) { self.runner = runner }

    /// One side's outcome, or the error that stopped it.
    final class SideBox: @unchecked Sendable {
        // @unchecked: written by one thread, read after `join`.
        var result: Result<Comparison.Side, Error> = .failure(MachineError.infrastructure("not run"))
    }

    public func compare(_ o: Options, timeout: Double = 1800) throws -> Comparison {
        let clock = Stopwatch()
        // Build both first (one recipe lock at a time), so the boots really overlap.
        let gOld = try runner.generation(o.old), gNew = try runner.generation(o.new)
        _ = try runner.openHypervisor()
        let boxes = [SideBox(), SideBox()]
        let group = DispatchGroup()
        for (i, g) in [gOld, gNew].enumerated() {
            let box = boxes[i]
            let label = i == 0 ? "old" : "new"
            let work: @Sendable () -> Void = { [runner] in
                box.result = Result { try Self.side(g, label: label, options: o, runner: runner, deadline: .after(seconds: timeout)) }
            }
            if o.sequential { work(); continue }
            group.enter()
            Thread.detachNewThread { work(); group.leave() }
        }
        group.wait()
        let old = try boxes[0].result.get(), new = try boxes[1].result.get()
        var c = Comparison(old: old, new: new)
        c.seconds = clock.seconds
        return c
    }

    /// Boots `g` `options.boots` times; the first boot is probed and runs the steps.
    static func side(_ g: Generation, label: String, options: CompareRunner.Options, runner: Runner, deadline: Deadline) throws -> Comparison.Side {
        var spec = options.scenario?.scenario.machine ?? MachineSpec(image: g.name, imageLine: 0, memoryMiB: 512, cpus: 1)
        spec.image = g.name
        let h = try runner.openHypervisor()
        let payload = try options.scenario.flatMap { try runner.payloadDirectory($0) }
        var bootSeconds: [Double] = []
        var snapshot = Snapshot()
        var steps: [StepResult] = []
        var firstDirectory: String?
        for n in 1...max(1, options.boots) {
            let runID = Runner.newRunID()
            let dir = try runner.options.state.create((runner.options.runsDirectory ?? runner.options.state.runs)
                .appendingPathComponent("\(runID)-compare-\(label)-\(Runner.slug(g.name))\(n > 1 ? "-boot\(n)" : "")"))
            if firstDirectory == nil { firstDirectory = dir.path }
            let machine = try Machine(name: "rehearse-\(runID)", generation: g, spec: spec, hypervisor: h, runID: runID,
                                      scenario: "compare \(label) \(g.name)", allowConsole: options.scenario?.scenario.allowConsole ?? [],
                                      directory: dir, payload: payload)
            defer { machine.destroy() }
            try machine.waitReady(deadline: deadline)
            bootSeconds.append(machine.readySeconds ?? 0)
            guard n == 1 else { continue }
            // Let start-up settle before probing, so that both sides are seen in the same state.
            _ = try? BootCheck().settle(on: machine, deadline: Deadline.after(seconds: 120).earlier(deadline))
            snapshot = try Probes.snapshot(of: machine, deadline: deadline)
            if let p = options.scenario {
                let context = runner.context(for: p)
                var failed = false
                for step in p.scenario.steps {
                    if failed { steps.append(Runner.skipped(step)); continue }
                    let stepDeadline = Deadline.after(seconds: step.timeout ?? step.defaultTimeout).earlier(deadline)
                    let r = StepExecutor.execute(step, on: machine, deadline: stepDeadline, context: context)
                    steps.append(r)
                    if r.outcome != .passed && r.outcome != .expectedFailure { failed = true }
                }
            }
        }
        return Comparison.Side(generation: g, snapshot: snapshot, bootSeconds: bootSeconds, steps: steps, runDirectory: firstDirectory)
    }
}
