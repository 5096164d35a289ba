import Foundation

/// One scenario as it runs: its run directory, its machines, each step's
/// result, and the verdict.
///
/// The YAML runner, `compare`, `gate` and the Swift API all drive scenarios
/// through it, so a machine is made (`boot`), a step's outcome is decided
/// (`step`) and a scenario's verdict is given (`finish`) in one place each.
/// After the first step that does not pass, later steps are skipped.
public actor ScenarioRun {
    public nonisolated let name: String
    public nonisolated let runID: String
    public nonisolated let directory: URL
    let runner: Runner
    let prepared: Runner.Prepared
    var scenario: Scenario { prepared.scenario }
    /// The scenario's own deadline: no step or boot runs past it. Moved later
    /// by the time a boot waited for a boot slot or for its image to be built
    /// (that time is not the guest's).
    public private(set) var deadline: Deadline
    private let clock = Stopwatch()
    private var result: ScenarioResult
    private var machines: [Machine] = []
    /// Each machine's name in the scenario (`machine` for the single one).
    private var machineNames: [String] = []
    private var stepsRun = 0
    /// The payload directory the first machine booted with (for the bundle).
    private var payloadUsed: URL?
    /// Units the steps run so far may leave failed (a Swift scenario's steps are known only as they run).
    private var allowedByStepsRun: Set<String> = []
    /// The first step that did not pass, or the boot that failed.
    private var failure: (outcome: Outcome, message: String)?
    private var finished: ScenarioResult?

    /// Makes the run directory; a scenario that cannot have one ends at once.
    init(prepared: Runner.Prepared, runner: Runner) throws {
        let scenario = prepared.scenario
        self.name = scenario.name
        self.prepared = prepared
        self.runner = runner
        self.deadline = .after(seconds: scenario.timeout)
        let runID = Runner.newRunID()
        self.runID = runID
        let base = runner.options.runsDirectory ?? runner.options.state.runs
        self.result = ScenarioResult(name: scenario.name, file: scenario.file, outcome: .passed, steps: [], seconds: 0,
                                     image: scenario.machine.image, startedAt: Date())
        do {
            directory = try runner.options.state.create(base.appendingPathComponent("\(runID)-\(Runner.slug(scenario.name))"))
        } catch {
            throw RehearsalError.infrastructure("cannot create the run directory: \(error)")
        }
        result.runDirectory = directory.path
        runner.observer?.scenarioStarted(scenario, run: runID)
    }

    /// Whether a step failed (or a boot): later steps are then skipped.
    public var hasFailed: Bool { failure != nil }

    /// Builds the image, starts the machine `p` declares and waits until its
    /// shell answers and the boot check passes. A failed boot is the
    /// scenario's failure (recorded here) and is thrown as `RehearsalError`.
    func boot(_ p: Runner.Prepared, generation: Generation? = nil, bootCheck: Bool = true, machineName: String? = nil) async throws -> Machine {
        // The first machine lives in the run directory itself; others (named)
        // in a folder each, so that every machine keeps its own transcripts.
        var dir = directory, domain = "rehearse-\(runID)"
        if let machineName, machineName != "machine" || scenario.hasSeveralMachines || !machines.isEmpty {
            dir = directory.appendingPathComponent(Runner.slug(machineName))
            domain += "-\(Runner.slug(machineName))"
        }
        do {
            if dir != directory {
                do { dir = try runner.options.state.create(dir) } catch {
                    throw Runner.BootFailure(error: .infrastructure("cannot create \(dir.path): \(error)"), console: nil)
                }
            }
            let building = Stopwatch()
            let (g, h, payload) = try await runner.materials(p, generation: generation)
            // Building an image (once, then cached) is not the scenario's time.
            deadline = deadline.later(by: building.seconds)
            // Machines boot at once: the subject's system and payload are the
            // result's (with no subject named, the first machine's to get here).
            if machineName == nil || (p.subject.map { $0 == machineName } ?? (result.imageDigest == nil)) {
                result.image = g.name
                result.imageDigest = g.digest
                result.kernelRelease = g.kernelRelease
                payloadUsed = payload
            }
            result.uri = h.uri
            result.accelerator = h.accelerator.rawValue
            let (m, waited) = try await runner.start(p, generation: g, hypervisor: h, payload: payload, runID: runID, domainName: domain,
                                           directory: dir, deadline: deadline, bootCheck: bootCheck)
            deadline = deadline.later(by: waited)
            machines.append(m)
            machineNames.append(machineName ?? "machine")
            result.bootSeconds = await m.readySeconds
            if result.restoredFrom == nil { result.restoredFrom = await m.restoredFrom?.id }
            if result.start == nil { result.start = await m.startNote }
            return m
        } catch let e as Runner.BootFailure {
            result.console = e.console
            let which = machineName.map { $0 == "machine" ? "" : " of \($0)" } ?? ""
            fail(e.error.outcome, "boot\(which): \(e.error)\(e.shellAnswered ? "" : " (the guest's shell never answered)")")
            throw e.error
        }
    }

    /// Boots every machine of the scenario at once, each with its cards on
    /// this run's own networks, and waits until all are ready. The first
    /// boot that fails stops the others; `finish` destroys whatever started.
    /// A scenario with one machine and no network boots it as always.
    /// `generation` (compare's side) is booted by the machines in `replacing`.
    func bootAll(_ p: Runner.Prepared, generation: Generation? = nil, replacing: Set<String> = [],
                 bootCheck: Bool = true) async throws -> [String: Machine] {
        let roles = p.scenario.machines
        func replacement(for name: String) -> Generation? { replacing.contains(name) ? generation : nil }
        if !p.scenario.bootsRoles {
            return [roles[0].name: try await boot(p, generation: replacement(for: roles[0].name), bootCheck: bootCheck)]
        }
        let plan = p.scenario.networkPlan()
        return try await withThrowingTaskGroup(of: (String, Machine).self) { group in
            for role in roles {
                let view = p.role(role.name, network: plan.machines[role.name])
                let g = replacement(for: role.name)
                group.addTask { (role.name, try await self.boot(view, generation: g, bootCheck: bootCheck, machineName: role.name)) }
            }
            var booted: [String: Machine] = [:]
            do {
                for try await (name, machine) in group { booted[name] = machine }
            } catch {
                group.cancelAll()
                throw error
            }
            return booted
        }
    }

    /// The machine's name in the scenario.
    private func name(of machine: Machine) -> String? {
        machines.firstIndex { $0 === machine }.map { machineNames[$0] }
    }

    /// Runs one step on `machine` (or records it as skipped after a failure),
    /// collects diagnostics when it fails, and reports it.
    @discardableResult
    func step(_ step: Step, on machine: Machine, index: Int? = nil, of count: Int? = nil) async -> StepResult {
        let i = index ?? stepsRun
        stepsRun += 1
        allowedByStepsRun.formUnion(step.allowFailed)
        guard failure == nil else {
            let r = Runner.skipped(step)
            result.steps.append(r)
            return r
        }
        if let r = await pauseIfAsked(before: step, index: i, of: count) { return r }
        runner.observer?.stepStarted(step, index: i, of: count, run: runID)
        let stepDeadline = Deadline.after(seconds: step.timeout ?? step.defaultTimeout).earlier(deadline)
        var context = runner.context(for: prepared)
        context.scenarioDeadline = (deadline, scenario.timeout)
        let waitedBefore = await machine.slotWaitSeconds
        var r = await StepExecutor.execute(step, on: machine, deadline: stepDeadline, context: context)
        // Among several machines, every report says which one a step ran on.
        let machineName = scenario.hasSeveralMachines || machines.count > 1 ? name(of: machine) : nil
        if let machineName {
            r.machine = machineName
            r.name = "\(machineName): \(r.name)"
        }
        // A reboot's wait for a boot slot is not the guest's time: later steps get it back.
        deadline = deadline.later(by: await machine.slotWaitSeconds - waitedBefore)
        result.steps.append(r)
        runner.observer?.stepFinished(r, index: i, of: count, run: runID)
        if r.outcome == .failed || r.outcome == .expectedFailure {
            await Diagnostics.collect(from: machine, into: directory,
                                      prefix: (r.outcome == .expectedFailure ? "step\(i + 1)-" : "") + (machineName.map { "\($0)-" } ?? ""))
        }
        if r.outcome != .passed && r.outcome != .expectedFailure {
            fail(r.outcome, "step \(i + 1) `\(r.name)` (\(scenario.file):\(r.line)): \(r.message ?? "failed")")
        }
        return r
    }

    /// A failure nobody asserted is still a failure: `BootCheck.checkAtEnd`
    /// on every machine still running. A failure is reported as one more
    /// step, so that JUnit, TAP and the terminal show it where the steps are.
    /// Only failed units decide here: a guest that cannot be asked (after a
    /// step expected to break it) was judged by that step already.
    private func checkUnitsAtEnd() async {
        var allowed = Set(scenario.steps.flatMap(\.allowFailed)).union(allowedByStepsRun)
        // A `wait_for_unit` expected to fail expected its unit to fail.
        for (step, r) in zip(scenario.steps, result.steps) where r.outcome == .expectedFailure {
            if case .waitForUnit(let unit) = step.action { allowed.insert(unit) }
        }
        for m in machines where m.domain != nil {
            let clock = Stopwatch()
            let error: RehearsalError
            do {
                try await scenario.bootCheck.checkAtEnd(on: m, allowing: allowed)
                continue
            } catch let e as RehearsalError where e.code == .unitFailed || e.code == .interrupted {
                error = e
            } catch {
                continue
            }
            var r = StepResult(name: "no unit failed during the scenario", kind: "unit_check", line: scenario.steps.last?.line ?? 1,
                               command: nil, outcome: error.outcome, seconds: clock.seconds)
            r.message = error.description
            r.stdout = error.evidence
            result.steps.append(r)
            runner.observer?.stepFinished(r, index: result.steps.count - 1, of: result.steps.count, run: runID)
            await Diagnostics.collect(from: m, into: directory, prefix: "")
            fail(r.outcome, "\(error.description) (\(scenario.file))")
            return
        }
    }

    /// The machines still running, with their names in the scenario.
    private var running: [(name: String, machine: Machine)] {
        zip(machineNames, machines).filter { $0.1.domain != nil }.map { ($0.0, $0.1) }
    }

    /// Keeps the machines still running for a person (`--keep-on-failure`)
    /// until `rehearse stop`, a signal or cancellation.
    private func keep() async {
        let kept = running
        guard !kept.isEmpty else { return }
        _ = await hold(kept) { runner.observer?.machinesKept(scenario, machines: kept.map(\.name), directory: directory, run: runID) }
    }

    /// Serves `kept` on the run's socket until the keep ends; nil when it could not be served.
    private func hold(_ kept: [(name: String, machine: Machine)], announce: () -> Void) async -> KeptMachines.End? {
        defer { try? FileManager.default.removeItem(at: directory.appendingPathComponent(KeptMachines.socketName)) }
        do {
            let server = try KeptMachines(kept, directory: directory)
            announce()
            return await server.serve()
        } catch {
            runner.observer?.keepFailed(scenario, reason: "\(error)", run: runID)
            return nil
        }
    }

    /// Stops before `step` for a person when the run asks for it (`--step`,
    /// or a `pause` step at a terminal) until `rehearse continue`. Returns
    /// the step's result when the pause decided it (a `pause` step, or a
    /// stop or signal during the pause); nil to run the step. The pause's
    /// time does not count against the scenario's deadline.
    private func pauseIfAsked(before step: Step, index i: Int, of count: Int?) async -> StepResult? {
        let isPause: Bool
        if case .pause = step.action { isPause = true } else { isPause = false }
        switch runner.options.pauses {
        case .never: return nil
        case .atPauseSteps: guard isPause else { return nil }
        case .beforeEveryStep: break
        }
        let kept = running
        guard !kept.isEmpty else { return nil }
        let clock = Stopwatch()
        var note: String?
        if case .pause(let n) = step.action { note = n }
        let end = await hold(kept) {
            runner.observer?.paused(scenario, before: step, index: i, note: note, machines: kept.map(\.name), directory: directory, run: runID)
        }
        deadline = deadline.later(by: clock.seconds)
        var r = StepResult(name: step.name, kind: step.kind, line: step.line, command: step.command, outcome: .passed, seconds: clock.seconds)
        switch end {
        case .continue?, nil:
            guard isPause else { return nil }
            r.stdout = "paused for \(String(format: "%.1f", clock.seconds)) s\n"
        case .stop?, .interrupted?:
            r.outcome = .interrupted
            r.message = end == .stop ? "stopped at a pause by `rehearse stop`" : "interrupted at a pause"
            fail(.interrupted, "step \(i + 1) `\(r.name)` (\(scenario.file):\(r.line)): \(r.message!)")
        }
        runner.observer?.stepStarted(step, index: i, of: count, run: runID)
        result.steps.append(r)
        runner.observer?.stepFinished(r, index: i, of: count, run: runID)
        return r
    }

    /// Records steps that were never reached.
    func skip(_ steps: [Step]) {
        result.steps += steps.map(Runner.skipped)
    }

    /// Records a failure that is not a step's (a boot, an error the scenario's own code threw).
    func fail(_ outcome: Outcome, _ message: String) {
        if failure == nil { failure = (outcome, message) }
    }

    /// Checks that no unit failed while the steps ran (when all passed),
    /// destroys every machine and gives the verdict. Idempotent.
    func finish(checkUnits: Bool = true) async -> ScenarioResult {
        if let finished { return finished }
        if checkUnits, failure == nil { await checkUnitsAtEnd() }
        for (m, name) in zip(machines, machineNames) {
            result.boots += await m.boots.map { b in
                var b = b
                if name != "machine" || machines.count > 1 { b.machine = name }
                return b
            }
        }
        result.outcome = failure?.outcome ?? .passed
        result.message = failure?.message
        result.seconds = clock.seconds
        // Said before it is written: the terminal's last line for the scenario names it.
        let bundling = runner.options.bundle || result.outcome == .failed || result.outcome == .infrastructure
        if bundling { result.bundle = directory.appendingPathComponent(Bundle.fileName).path }
        try? ReportWriter.json([result]).write(to: directory.appendingPathComponent("result.json"))
        runner.observer?.scenarioFinished(result, run: runID)
        if runner.options.keepOnFailure, result.outcome == .failed { await keep() }
        for m in machines { await m.destroy() }
        if bundling {
            do {
                _ = try await writeBundle(host: hostFacts())
            } catch {
                result.bundle = nil
                try? ReportWriter.json([result]).write(to: directory.appendingPathComponent("result.json"))
                runner.observer?.bundleFailed(scenario, reason: "\(error)", run: runID)
            }
        }
        finished = result
        return result
    }

    /// The host's side of a bundle: libvirt, QEMU, accelerator, URI, kernel.
    private func hostFacts() async -> Bundle.Host {
        func version(_ v: UInt) -> String { "\(v / 1_000_000).\(v / 1000 % 1000).\(v % 1000)" }
        let versions = machines.first.flatMap { try? $0.hypervisor.connection.versions() }
        var u = utsname()
        uname(&u)
        let kernel = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Bundle.Host(libvirt: versions.map { version($0.library) } ?? "unknown", qemu: versions.map { version($0.hypervisor) } ?? "unknown",
                           accelerator: result.accelerator ?? "unknown", uri: result.uri ?? "unknown", kernel: kernel)
    }

    /// Writes the run's bundle (`Bundle`), once its machines are gone and their transcripts complete.
    private func writeBundle(host: Bundle.Host) async throws -> URL {
        // The machine the result is about: the first a candidate replaced.
        let m = scenario.machines[prepared.subjectIndex].spec
        var settings: [String: String] = ["image": result.image ?? m.image, "memory": "\(m.memoryMiB) MiB", "cpus": "\(m.cpus)"]
        if scenario.hasSeveralMachines, let replaced = prepared.replaced { settings["replaced"] = replaced.joined(separator: ",") }
        switch m.payload {
        case .directory(let path)?: settings["payload"] = "directory \(path)"
        case .recipe(let name, let payload)?: settings["payload"] = "recipe \(name)/\(payload)"
        case nil: break
        }
        if let system = m.system { settings["system"] = system.path }
        if let ignition = m.ignition { settings["ignition"] = ignition }
        if m.cloudInit != nil { settings["cloud_init"] = "yes" }
        if let login = m.console { settings["console"] = "log in as \(login.user)" }
        if m.coldBoot { settings["cold_boot"] = "true" }
        var pins: [Bundle.Pin] = []
        for (name, digest) in result.boots.map({ ($0.generation, $0.digest) }) + [(result.image ?? "", result.imageDigest ?? "")]
        where !digest.isEmpty && !pins.contains(where: { $0.digest == digest }) {
            pins.append(Bundle.Pin(name: name, digest: digest))
        }
        let payload = payloadUsed, payloadName = settings["payload"] ?? "payload"
        let bundle = Bundle(scenario: scenario.name, file: scenario.file, outcome: result.outcome, message: result.message, machine: settings,
                            generations: pins, payload: try await offload { try payload.map { Bundle.Pin(name: payloadName, digest: try Bundle.treeDigest($0)) } },
                            host: host)
        let (file, dir) = (scenario.file, directory)
        return try await offload { try Bundle.write(bundle, scenarioFile: file, payload: payload, runDirectory: dir) }
    }
}
