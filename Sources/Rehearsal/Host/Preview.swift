import Foundation

/// `rehearse preview -- COMMAND`: an APT command rehearsed on a fresh
/// capture of the host before it touches the host.
///
/// 1. capture the host (or `--root` tree) as a generation;
/// 2. on the host, fetch what COMMAND would download (`AptDownload`) into
///    Rehearsal's cache;
/// 3. boot the capture with those packages as its payload, settle, probe;
/// 4. run COMMAND there (never downloading), reboot (the boot check runs),
///    run the given scenarios' steps, probe again;
/// 5. compare the two probes, as `compare` does.
///
/// The verdict is the scenario run's: COMMAND, the reboot with its boot
/// check, every scenario step and the end-of-run unit check must pass.
public struct Preview: Sendable {
    public var command: AptCommand
    /// The capture's settings (root, name, excludes, kernel).
    public var capture: HostCapture
    /// Scenarios whose steps run after the reboot (single-machine ones).
    public var scenarios: [Runner.Prepared] = []
    public var memoryMiB = 1024

    public init(command: AptCommand, capture: HostCapture = HostCapture()) {
        self.command = command
        self.capture = capture
    }

    public enum Event: Sendable {
        case capture(HostCapture.Event)
        case phase(String)
    }

    /// What a preview found.
    public struct Result: Codable, Sendable {
        public var command: [String]
        public var root: String
        public var generation: Generation
        /// The run that rehearsed COMMAND: its verdict, steps and run directory.
        public var run: ScenarioResult
        /// Before COMMAND (old) and after the reboot (new); nil when the guest never got that far.
        public var comparison: Comparison?
        /// What the host's download-only run fetched.
        public var downloaded: [String]
        /// Seconds for capture, download, boot, command, reboot, probes, steps.
        public var seconds: [String: Double]
        public var passed: Bool { run.outcome == .passed }
    }

    public func run(runner: Runner, onEvent: @escaping @Sendable (Event) -> Void = { _ in }) async throws -> Result {
        var seconds: [String: Double] = [:]
        let state = runner.options.state
        var clock = Stopwatch()
        let capture = self.capture
        let captured = try await offload { try capture.run(state: state) { onEvent(.capture($0)) } }
        let g = captured.generation
        seconds["capture"] = clock.seconds

        onEvent(.phase("fetch what `\(command.description)` downloads (APT download-only, into Rehearsal's cache)"))
        clock = Stopwatch()
        let cache = try state.create(state.downloads.appendingPathComponent("apt").appendingPathComponent(g.shortDigest))
        let archives = cache.appendingPathComponent("payload/archives")
        let download = AptDownload(root: capture.root, archives: archives)
        let command = self.command
        let fetched = try await offload { try download.run(command) }
        seconds["download"] = clock.seconds

        var spec = MachineSpec(image: g.name, imageLine: 0, memoryMiB: memoryMiB, cpus: 1)
        spec.payload = .directory(archives.deletingLastPathComponent().path)
        var scenario = Scenario.empty(machine: spec, name: "preview \(command.description)", timeout: 3600)
        scenario.file = capture.root == "/" ? "(this host)" : capture.root
        var steps = [
            Step(name: "stage the downloaded packages", line: 0, timeout: 600,
                 action: .succeed("mkdir -p /var/cache/apt/archives && for f in \(Payload.mountPoint)/archives/*.deb; do [ -e \"$f\" ] && cp \"$f\" /var/cache/apt/archives/; done; true")),
            Step(name: command.description, line: 0, timeout: 1800, action: .succeed(command.guestCommand)),
            Step(name: "reboot", line: 0, timeout: 900, action: .reboot("reboot")),
        ]
        for p in scenarios {
            for var s in p.scenario.steps {
                s.name = "\(p.scenario.name): \(s.name)"
                steps.append(s)
            }
            scenario.bootCheck.allowFailed.formUnion(p.scenario.bootCheck.allowFailed)
        }
        scenario.steps = steps
        let prepared = Runner.Prepared(scenario: scenario, generations: [g.name: Runner.GenerationReference(captured: g)])

        onEvent(.phase("boot the capture \(g.name) \(g.shortDigest)"))
        clock = Stopwatch()
        let run = try ScenarioRun(prepared: prepared, runner: runner)
        let machine: Machine
        do {
            machine = try await run.boot(prepared, generation: g, bootCheck: false)
        } catch {
            let r = await run.finish(checkUnits: false)
            return Result(command: command.argv, root: capture.root, generation: g, run: r, comparison: nil, downloaded: fetched.debs, seconds: seconds)
        }
        seconds["boot"] = clock.seconds
        clock = Stopwatch()
        onEvent(.phase("probe the system before `\(command.description)`"))
        let limit = Deadline.after(seconds: 600)
        _ = try? await BootCheck().settle(on: machine, deadline: limit)
        let before = try? await Probes.snapshot(of: machine, deadline: limit)
        var probeSeconds = clock.seconds
        let started = Date()

        for (i, step) in steps.enumerated() {
            onEvent(.phase(step.name))
            clock = Stopwatch()
            _ = await run.step(step, on: machine, index: i, of: steps.count)
            let key = i == 1 ? "command" : i == 2 ? "reboot" : i == 0 ? "stage" : "steps"
            seconds[key, default: 0] += clock.seconds
        }
        var after: Snapshot?
        // After a failure, the "after" side is probed only if the guest still answers.
        var answers = await !run.hasFailed
        if !answers { answers = (try? await machine.run("true", deadline: .after(seconds: 10)))?.status == 0 }
        if answers {
            onEvent(.phase("probe the system after the reboot"))
            clock = Stopwatch()
            _ = try? await BootCheck().settle(on: machine, deadline: Deadline.after(seconds: 300))
            after = try? await Probes.snapshot(of: machine, deadline: Deadline.after(seconds: 600))
            probeSeconds += clock.seconds
        }
        seconds["probes"] = probeSeconds
        let r = await run.finish(checkUnits: true)
        var comparison: Comparison?
        if let before, let after {
            var upgraded = g
            upgraded.name = "after"
            upgraded.version = "after `\(command.description)` and a reboot"
            var original = g
            original.name = "before"
            let old = Comparison.Side(generation: original, snapshot: before, bootSeconds: [r.bootSeconds ?? 0], started: started, ready: started,
                                      steps: [], runDirectory: r.runDirectory, machine: nil, machineDirectory: r.runDirectory)
            let new = Comparison.Side(generation: upgraded, snapshot: after, bootSeconds: Self.lastBoot(r), started: started, ready: Date(),
                                      steps: [], runDirectory: r.runDirectory, machine: nil, machineDirectory: r.runDirectory)
            comparison = Comparison(old: old, new: new)
            comparison?.seconds = seconds.values.reduce(0, +)
        }
        return Result(command: command.argv, root: capture.root, generation: g, run: r, comparison: comparison, downloaded: fetched.debs, seconds: seconds)
    }

    /// The reboot's time to a shell, from the run's boot records.
    static func lastBoot(_ r: ScenarioResult) -> [Double] {
        guard r.boots.count > 1, let s = r.boots.last?.secondsToShell else { return [r.bootSeconds ?? 0] }
        return [s]
    }
}

extension ScenarioResult {
    /// A rehearsal that ended before any machine booted (a capture or APT's download failed), as a result to decide and record.
    public static func stopped(name: String, file: String, by e: RehearsalError) -> ScenarioResult {
        let outcome: Outcome = switch e.code.kind {
        case .failure, .badInput: .failed
        case .interrupted: .interrupted
        case .infrastructure: .infrastructure
        }
        return ScenarioResult(name: name, file: file, outcome: outcome, message: e.description, steps: [], seconds: 0, startedAt: Date())
    }
}
