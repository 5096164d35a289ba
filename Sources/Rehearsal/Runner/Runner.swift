import Foundation
import Synchronization

/// Runs scenarios: builds their image, boots a machine, runs the steps with
/// deadlines, judges them, and always destroys the machine. Scenarios may
/// run at once (`run(_:jobs:)`); they share one connection.
public final class Runner: Sendable {
    public struct Options: Sendable {
        public var uri: String?
        public var accelerator: Accelerator?
        public var state: StateDirectory
        /// Where run directories go; default `<state>/runs`.
        public var runsDirectory: URL?
        /// Keep the machines of a scenario that failed running (after its
        /// evidence is collected) until `rehearse stop`, a signal or cancellation.
        public var keepOnFailure: Bool
        /// Where a scenario stops for a person (`rehearse attach`, then `rehearse continue`).
        public var pauses: Pauses
        /// Boot every machine, never start one from a saved state (`--cold`).
        public var cold = false
        /// Write a bundle for every scenario, not only for failures (`--bundle`).
        public var bundle = false
        /// Generation name → the digest it must have (a replay's): a build
        /// with that digest is used, and any other is refused.
        public var pins: [String: String] = [:]
        public enum Pauses: Sendable {
            /// Never: `pause` steps pass straight on (nobody is at a terminal).
            case never
            /// At `pause` steps.
            case atPauseSteps
            /// Before every step (`--step`).
            case beforeEveryStep
        }
        public init(uri: String? = nil, accelerator: Accelerator? = nil, cold: Bool = false, state: StateDirectory = .fromEnvironment(), runsDirectory: URL? = nil,
                    keepOnFailure: Bool = false, pauses: Pauses = .never, bundle: Bool = false, pins: [String: String] = [:]) {
            self.pauses = pauses
            self.bundle = bundle
            self.pins = pins
            self.cold = cold
            self.uri = uri
            self.accelerator = accelerator
            self.state = state
            self.runsDirectory = runsDirectory
            self.keepOnFailure = keepOnFailure
        }
    }

    public let options: Options
    let observer: RunObserver?
    /// The connection's opening, shared by every scenario that asks for it.
    private let opening = Mutex<Task<Hypervisor, Error>?>(nil)

    /// Where machines' running states are kept for warm starts.
    public let savedStates: SavedStateStore

    public init(options: Options, observer: RunObserver? = nil) {
        self.options = options
        self.observer = observer
        self.savedStates = SavedStateStore(state: options.state)
    }



    /// The connection machines start on (opened on first use).
    /// Opened once per runner: libvirt lets a process open only one embedded root.
    public func openHypervisor() async throws -> Hypervisor {
        // One opening for all the scenarios that ask at once: a second
        // embedded root in the same process would be refused.
        let task = opening.withLock { opening -> Task<Hypervisor, Error> in
            if let opening { return opening }
            let options = self.options
            let t = Task {
                try await offload { () throws -> Hypervisor in
                    let h = try Hypervisor(uri: options.uri, accelerator: options.accelerator, state: options.state)
                    // Holding an embedded root's lock means no live process owns anything
                    // in it: whatever still runs there was left by a killed run.
                    _ = try? Janitor.sweep(h.connection, ownedByDeadOnly: h.embeddedRoot == nil)
                    return h
                }
            }
            opening = t
            return t
        }
        return try await task.value
    }

    /// Builds (or finds) a recipe's output. Builds run on a thread of their own.
    public func build(_ recipe: ImageRecipe) async throws -> BuiltRecipe {
        let (state, observer) = (options.state, self.observer)
        do {
            return try await offload { try recipe.build(state: state) { observer?.imageProgress(recipe.name, $0) } }
        } catch let e as RehearsalError where e.code.kind == .badInput {
            // Found when the scenario was prepared: unusable now is our side's failure.
            throw RehearsalError.infrastructure(e.description, underlying: e)
        }
    }

    /// Builds (or finds) a referenced generation; with a pin for it, the
    /// build with the pinned digest (an older one is fine).
    public func generation(_ ref: GenerationReference) async throws -> Generation {
        let options = self.options
        let pinned = { (name: String) in options.pins[name].flatMap { d in GenerationStore.all(state: options.state).first { $0.digest == d } } }
        if let g = ref.captured { return g }
        guard let recipe = ref.recipe else { throw RehearsalError.infrastructure("generation \(ref.name ?? "?") has neither a recipe nor a capture") }
        if let g = pinned(ref.name ?? recipe.name) { return g }
        let built = try await build(recipe)
        guard let g = ref.name.map({ built.generation(named: $0) }) ?? built.generations.first else {
            throw RehearsalError.infrastructure("recipe \(recipe.name) built no generation \(ref.name ?? "")")
        }
        if let want = options.pins[g.name], want != g.digest {
            if let old = pinned(g.name) { return old }
            throw RehearsalError(.unknownImage, "generation \(g.name) \(want.prefix(12)) is not built here: recipe \(recipe.name) builds \(g.shortDigest) now (its inputs changed), and no older build has that digest")
        }
        return g
    }

    /// The host directory of a scenario's payload, building its recipe if needed.
    func payloadDirectory(_ p: Prepared) async throws -> URL? {
        switch p.scenario.machine.payload {
        case nil: return nil
        case .directory(let path)?: return URL(fileURLWithPath: path)
        case .recipe(let name, let payload)?:
            guard let recipe = p.payloadRecipes[name] else { return nil }
            guard let dir = try await build(recipe).payloads[payload] else {
                throw RehearsalError.scenario("\(p.scenario.file):\(p.scenario.machine.payloadLine): recipe \(name) builds no payload `\(payload)`")
            }
            return dir
        }
    }

    /// What `StepExecutor` needs to run a prepared scenario's steps.
    public func context(for p: Prepared) -> StepExecutor.Context {
        let generations = p.generations
        let paths = ImageRecipe.searchPaths(scenarioFile: p.scenario.file)
        return StepExecutor.Context(bootCheck: p.scenario.bootCheck) { [self] name in
            // A YAML scenario's `boot:` generations were found at prepare
            // time; a scenario written in Swift names them as it goes.
            if let ref = generations[name] { return try await generation(ref) }
            do {
                return try await generation(GenerationReference.named(name, searchPaths: paths, state: options.state))
            } catch let e as RehearsalError where e.code.kind == .badInput {
                // A Swift scenario named it: the scenario's failure.
                throw RehearsalError.scenario(e.description)
            }
        }
    }

    /// Runs one scenario to its end. Never throws: every failure is in the result.
    public func run(_ p: Prepared) async -> ScenarioResult {
        let s = p.scenario
        let run: ScenarioRun
        do {
            run = try ScenarioRun(prepared: p, runner: self)
        } catch {
            return ScenarioResult(name: s.name, file: s.file, outcome: .infrastructure, message: "\(error)", steps: s.steps.map(Self.skipped),
                                  seconds: 0, image: s.machine.image, startedAt: Date())
        }
        guard let machines = try? await run.bootAll(p) else {
            await run.skip(s.steps)
            return await run.finish()
        }
        for (i, step) in s.steps.enumerated() {
            // The parser made sure every step's machine exists.
            guard let machine = machines[step.machine ?? s.machines[0].name] else { continue }
            await run.step(step, on: machine, index: i, of: s.steps.count)
        }
        return await run.finish()
    }

    /// Runs `p`, and while it fails (the guest's failure: never an
    /// infrastructure failure or an interruption), again on a fresh machine,
    /// up to `retries` more times. The failed attempts travel with the
    /// result: a pass after them is flaky, never a plain pass.
    public func run(_ p: Prepared, retries: Int) async -> ScenarioResult {
        var failed: [ScenarioResult] = []
        while true {
            var r = await run(p)
            if r.outcome == .failed, failed.count < retries, !Interruption.shared.isRequested, !Task.isCancelled {
                failed.append(r)
                observer?.scenarioRetrying(p.scenario, attempt: failed.count + 1, of: retries + 1, run: r.runDirectory ?? "")
                continue
            }
            if !failed.isEmpty { r.failedAttempts = failed }
            return r
        }
    }

    /// Runs scenarios, up to `jobs` at once; results come in the order given.
    /// After SIGINT/SIGTERM no further scenario starts.
    public func run(_ prepared: [Prepared], jobs: Int, retries: Int = 0) async -> [ScenarioResult] {
        await withTaskGroup(of: (Int, ScenarioResult).self) { group in
            var results = [ScenarioResult?](repeating: nil, count: prepared.count)
            var next = 0
            func start() {
                let i = next
                next += 1
                group.addTask { (i, await self.run(prepared[i], retries: retries)) }
            }
            while next < min(max(1, jobs), prepared.count) { start() }
            for await (i, r) in group {
                results[i] = r
                if next < prepared.count, !Interruption.shared.isRequested, !Task.isCancelled { start() }
            }
            return results.compactMap { $0 }
        }
    }

    /// How many scenarios to run at once by default: one per core, as many
    /// as the free memory holds. The scenario whose machines (all running at
    /// once, each with QEMU's own) take the most memory decides.
    public static func defaultJobs(for prepared: [Prepared], cores: Int = ProcessInfo.processInfo.activeProcessorCount,
                                   availableMiB: Int? = HostMemory.availableMiB()) -> Int {
        let need = prepared.map { $0.scenario.machines.reduce(256) { $0 + $1.spec.memoryMiB + HostMemory.overheadMiB } }.max() ?? 1
        let byMemory = availableMiB.map { $0 / need } ?? cores
        return max(1, min(cores, byMemory))
    }

    /// A boot that failed, with the console's last lines once the machine had started.
    public struct BootFailure: Error {
        public var error: RehearsalError
        public var console: [String]?
        /// False when the machine started but its shell never answered.
        public var shellAnswered = true
    }

    /// What a machine boots from: its generation (built if needed), the
    /// connection, and its payload directory.
    func materials(_ p: Prepared, generation given: Generation? = nil) async throws -> (Generation, Hypervisor, URL?) {
        do {
            // The connection first: a bad URI fails before an image is built.
            let h = try await openHypervisor()
            let generation: Generation
            if let given {
                generation = given
            } else if let files = p.scenario.machine.system {
                generation = try await offload { try Generation.of(files) }
                if let want = options.pins[generation.name], want != generation.digest {
                    throw RehearsalError(.badImage, "\(files.path) is not the system the bundle ran: its digest is \(generation.shortDigest), not \(want.prefix(12))")
                }
            } else {
                generation = try await self.generation(p.machineGeneration!)
            }
            let payload = try await payloadDirectory(p)
            return (generation, h, payload)
        } catch let e as RehearsalError {
            throw BootFailure(error: e, console: nil)
        }
    }

    /// Starts a machine and waits until its shell answers and the boot check
    /// passes. On failure nothing is left running.
    func start(_ p: Prepared, generation: Generation, hypervisor h: Hypervisor, payload: URL?,
               runID: String, domainName: String? = nil, directory: URL, deadline given: Deadline,
               bootCheck: Bool = true, savedStates store: SavedStateStore? = nil) async throws -> (machine: Machine, waitedSeconds: Double) {
        let s = p.scenario
        let machine: Machine
        // The boot and its check hold one of the connection's boot slots;
        // the time spent waiting for one does not count against the deadline.
        let queued = Stopwatch()
        do { try await h.bootSlots.acquire() } catch let e as RehearsalError { throw BootFailure(error: e, console: nil) }
        defer { h.bootSlots.release() }
        let waited = queued.seconds
        let deadline = given.later(by: waited)
        do {
            if let sig = Interruption.shared.requested { throw RehearsalError.interrupted("interrupted by \(sig)") }
            if Task.isCancelled { throw RehearsalError.interrupted("cancelled") }
            observer?.machineBooting(s, accelerator: h.accelerator, uri: h.uri, run: runID)
            let coldReason = options.cold ? "--cold" : Machine.coldReason(generation: generation, spec: s.machine)
            machine = try await Machine(name: domainName ?? "rehearse-\(runID)", generation: generation, spec: s.machine, hypervisor: h,
                                        runID: runID, scenario: s.name, allowConsole: s.allowConsole, directory: directory, payload: payload,
                                        savedStates: coldReason == nil ? store ?? savedStates : nil)
            if let coldReason { await machine.noteStart("boots cold: \(coldReason)") }
        } catch let e as RehearsalError {
            throw BootFailure(error: e, console: nil)
        }
        do {
            try await machine.waitReady(deadline: deadline)
            // A state is kept only after a boot check passed (compare keeps its own after settling).
            if bootCheck {
                try await s.bootCheck.run(on: machine, deadline: deadline)
                try await machine.keepRunningState(deadline: deadline)
            }
        } catch {
            let tail = machine.io.consoleTail(15)
            let answered = await machine.readySeconds != nil
            await machine.destroy()
            throw BootFailure(error: error as? RehearsalError ?? .infrastructure("\(error)"), console: tail, shellAnswered: answered)
        }
        observer?.machineReady(s, seconds: await machine.readySeconds ?? 0, run: runID)
        if let note = await machine.startNote { observer?.machineStarted(s, note: note, run: runID) }
        return (machine, waited)
    }

    /// Builds the image, starts a machine and waits until its shell answers.
    /// On failure nothing is left running. (For tests and tools that drive
    /// a machine without a `ScenarioRun`.)
    /// `savedStates` replaces the runner's store of saved states.
    public func bootMachine(_ p: Prepared, runID: String = Runner.newRunID(), directory: URL, deadline: Deadline,
                            bootCheck: Bool = true, savedStates: SavedStateStore? = nil) async throws -> Machine {
        let (g, h, payload) = try await materials(p)
        return try await start(p, generation: g, hypervisor: h, payload: payload, runID: runID, directory: directory,
                               deadline: deadline, bootCheck: bootCheck, savedStates: savedStates).machine
    }

    static func skipped(_ step: Step) -> StepResult {
        StepResult(name: step.name, kind: step.kind, line: step.line, command: step.command, outcome: .skipped, seconds: 0)
    }

    public static func newRunID() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date()) + "-" + String(format: "%06x", UInt32.random(in: 0...0xffffff))
    }

    static func slug(_ s: String) -> String {
        String(s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(40))
    }
}
