import Foundation

/// Runs scenarios: builds their image, boots a machine, runs the steps with
/// deadlines, judges them, and always destroys the machine.
public final class Runner: @unchecked Sendable {
    // @unchecked: the only mutable state, the lazily opened hypervisor, is
    // guarded by `lock`; scenarios may run on several threads at once.
    public struct Options: Sendable {
        public var uri: String?
        public var accelerator: Accelerator?
        public var state: StateDirectory
        /// Where run directories go; default `<state>/runs`.
        public var runsDirectory: URL?
        public init(uri: String? = nil, accelerator: Accelerator? = nil, state: StateDirectory = .fromEnvironment(), runsDirectory: URL? = nil) {
            self.uri = uri
            self.accelerator = accelerator
            self.state = state
            self.runsDirectory = runsDirectory
        }
    }

    /// A scenario checked and ready to run: every generation it names
    /// (`machine:` and `boot:` steps) and its payload are found.
    public struct Prepared: Sendable {
        public var scenario: Scenario
        /// Reference → the recipe that builds it and the generation's name there.
        public var generations: [String: GenerationReference]
        public var payloadRecipe: ImageRecipe?

        /// The machine's generation; nil when it boots a system given as files.
        public var machineGeneration: GenerationReference? {
            scenario.machine.system == nil ? generations[scenario.machine.image] : nil
        }
    }

    public struct GenerationReference: Sendable {
        public var recipe: ImageRecipe
        /// nil: the recipe's first generation.
        public var name: String?
        public init(recipe: ImageRecipe, name: String?) {
            self.recipe = recipe
            self.name = name
        }
    }

    public let options: Options
    let observer: RunObserver?
    private var hypervisor: Hypervisor?
    private let lock = NSLock()

    public init(options: Options, observer: RunObserver? = nil) {
        self.options = options
        self.observer = observer
    }

    deinit { hypervisor?.close() }

    /// Parses every file, finds every image and checks every disk image before anything boots.
    /// Throws the first `ScenarioError` (one line, naming file and line).
    /// With `generation`, that generation (a gate's candidate) takes the
    /// place of the one each scenario's `machine:` names.
    public static func prepare(files: [String], generation: String? = nil) throws -> [Prepared] {
        try files.map { f in
            var s = try ScenarioParser.parse(file: f)
            if let generation {
                // A candidate given as files (a disk image, a NixOS system) or by a generation's name.
                if let files = SystemFiles.detect(generation) {
                    s.machine.system = files
                    s.machine.image = files.displayName
                } else if [".qcow2", ".raw", ".img"].contains(where: { generation.hasSuffix($0) }) {
                    throw ScenarioError(file: generation, line: nil, "no such disk image or NixOS system")
                } else {
                    s.machine.system = nil
                    s.machine.image = generation
                }
            }
            if case .nixosSystem(let top)? = s.machine.system, !NixOSSystem.looksLikeToplevel(top) {
                throw ScenarioError(file: f, line: s.machine.imageLine,
                                    "`nixos`: \(top) is not a NixOS system (no kernel, initrd, kernel-params and init there or in its system/)")
            }
            if case let .diskImage(disk, format)? = s.machine.system {
                // Wrong format or no boot sector: refused now, not after a boot that finds nothing.
                do { try DiskImageCheck.check(disk, declared: format) } catch let e as DiskImageCheck.Problem {
                    if let generation { throw ScenarioError(file: generation, line: nil, e.reason) }
                    throw ScenarioError(file: f, line: s.machine.imageLine, e.description)
                }
            }
            let paths = ImageRecipe.searchPaths(scenarioFile: f)
            func find(_ reference: String, line: Int) throws -> GenerationReference {
                do {
                    let (recipe, name) = try ImageRecipe.resolve(reference, searchPaths: paths)
                    return GenerationReference(recipe: recipe, name: name)
                } catch let e as ImageError {
                    throw ScenarioError(file: f, line: line, e.description)
                }
            }
            var generations: [String: GenerationReference] = [:]
            if s.machine.system == nil { generations[s.machine.image] = try find(s.machine.image, line: s.machine.imageLine) }
            for step in s.steps {
                if case .boot(let name) = step.action, generations[name] == nil { generations[name] = try find(name, line: step.line) }
            }
            var payloadRecipe: ImageRecipe?
            if case .recipe(let name, _)? = s.machine.payload {
                do {
                    payloadRecipe = try ImageRecipe.resolve(name, searchPaths: paths).recipe
                } catch let e as ImageError {
                    throw ScenarioError(file: f, line: s.machine.payloadLine, e.description)
                }
            }
            return Prepared(scenario: s, generations: generations, payloadRecipe: payloadRecipe)
        }
    }

    /// The connection machines start on (opened on first use).
    /// Opened once per runner: libvirt lets a process open only one embedded root.
    public func openHypervisor() throws -> Hypervisor {
        lock.lock(); defer { lock.unlock() }
        if let hypervisor { return hypervisor }
        let h = try Hypervisor(uri: options.uri, accelerator: options.accelerator, state: options.state)
        // Holding an embedded root's lock means no live process owns anything
        // in it: whatever still runs there was left by a killed run.
        _ = try? Janitor.sweep(h.connection, ownedByDeadOnly: h.embeddedRoot == nil)
        hypervisor = h
        return h
    }

    /// Builds (or finds) a recipe's output.
    public func build(_ recipe: ImageRecipe) throws -> BuiltRecipe {
        do {
            return try recipe.build(state: options.state) { [observer] in observer?.imageProgress(recipe.name, $0) }
        } catch let e as ImageError {
            throw MachineError.infrastructure(e.description)
        }
    }

    /// Builds (or finds) a referenced generation.
    public func generation(_ ref: GenerationReference) throws -> Generation {
        let built = try build(ref.recipe)
        guard let g = ref.name.map({ built.generation(named: $0) }) ?? built.generations.first else {
            throw MachineError.infrastructure("recipe \(ref.recipe.name) built no generation \(ref.name ?? "")")
        }
        return g
    }

    /// The host directory of a scenario's payload, building its recipe if needed.
    func payloadDirectory(_ p: Prepared) throws -> URL? {
        switch p.scenario.machine.payload {
        case nil: return nil
        case .directory(let path)?: return URL(fileURLWithPath: path)
        case .recipe(let name, let payload)?:
            guard let recipe = p.payloadRecipe else { return nil }
            guard let dir = try build(recipe).payloads[payload] else {
                throw MachineError.scenario("\(p.scenario.file):\(p.scenario.machine.payloadLine): recipe \(name) builds no payload `\(payload)`")
            }
            return dir
        }
    }

    /// What `StepExecutor` needs to run a prepared scenario's steps.
    public func context(for p: Prepared) -> StepExecutor.Context {
        let generations = p.generations
        return StepExecutor.Context(bootCheck: p.scenario.bootCheck) { [self] name in
            guard let ref = generations[name] else { throw MachineError.scenario("generation \(name) was not prepared") }
            return try generation(ref)
        }
    }

    /// Runs one scenario to its end. Never throws: every failure is in the result.
    public func run(_ p: Prepared) -> ScenarioResult {
        let s = p.scenario
        let clock = Stopwatch()
        let deadline = Deadline.after(seconds: s.timeout)
        observer?.scenarioStarted(s)
        var result = ScenarioResult(name: s.name, file: s.file, outcome: .passed, steps: [], seconds: 0,
                                    image: s.machine.image, startedAt: Date())
        func finish(_ outcome: Outcome, _ message: String?) -> ScenarioResult {
            result.outcome = outcome
            result.message = message
            result.seconds = clock.seconds
            if let dir = result.runDirectory {
                try? ReportWriter.json([result]).write(to: URL(fileURLWithPath: dir).appendingPathComponent("result.json"))
            }
            observer?.scenarioFinished(result)
            return result
        }

        let runID = Self.newRunID()
        let dir: URL
        do {
            let base = options.runsDirectory ?? options.state.runs
            dir = try options.state.create(base.appendingPathComponent("\(runID)-\(Self.slug(s.name))"))
            result.runDirectory = dir.path
        } catch {
            return finish(.infrastructure, "cannot create the run directory: \(error)")
        }

        let machine: Machine
        do {
            machine = try bootMachine(p, runID: runID, directory: dir, deadline: deadline) { g, h in
                result.image = g.name
                result.imageDigest = g.digest
                result.kernelRelease = g.kernelRelease
                result.uri = h.uri
                result.accelerator = h.accelerator.rawValue
            }
            result.bootSeconds = machine.readySeconds
        } catch let e as BootFailure {
            result.steps = s.steps.map(Self.skipped)
            result.console = e.console
            return finish(Self.outcome(e.error), "boot: \(e.error)\(e.shellAnswered ? "" : " (the guest's shell never answered)")")
        } catch {
            return finish(.infrastructure, "boot: \(error)")
        }
        defer { machine.destroy() }
        let context = self.context(for: p)

        var failure: (index: Int, step: StepResult)?
        for (i, step) in s.steps.enumerated() {
            if failure != nil {
                result.steps.append(Self.skipped(step))
                continue
            }
            observer?.stepStarted(step, index: i, of: s.steps.count)
            let stepDeadline = Deadline.after(seconds: step.timeout ?? step.defaultTimeout).earlier(deadline)
            var r = StepExecutor.execute(step, on: machine, deadline: stepDeadline, context: context)
            if r.outcome == .failed, deadline.hasPassed, r.message?.hasPrefix("timed out") == true {
                r.message = (r.message ?? "") + "; the scenario's timeout of \(StepExecutor.format(s.timeout)) s has passed"
            }
            result.steps.append(r)
            observer?.stepFinished(r, index: i, of: s.steps.count)
            if r.outcome == .failed || r.outcome == .expectedFailure {
                Diagnostics.collect(from: machine, into: dir, prefix: r.outcome == .expectedFailure ? "step\(i + 1)-" : "")
            }
            if r.outcome != .passed && r.outcome != .expectedFailure { failure = (i, r) }
        }
        result.boots = machine.boots
        machine.destroy()
        if let (i, f) = failure {
            return finish(f.outcome, "step \(i + 1) `\(f.name)` (\(s.file):\(f.line)): \(f.message ?? "failed")")
        }
        return finish(.passed, nil)
    }

    /// A boot that failed, with the console's last lines once the machine had started.
    public struct BootFailure: Error {
        public var error: MachineError
        public var console: [String]?
        /// False when the machine started but its shell never answered.
        public var shellAnswered = true
    }

    /// Builds the image, starts a machine and waits until its shell answers.
    /// On failure nothing is left running. `started` sees the image and hypervisor first.
    public func bootMachine(_ p: Prepared, runID: String = Runner.newRunID(), directory: URL, deadline: Deadline,
                            started: (Generation, Hypervisor) -> Void = { _, _ in }) throws -> Machine {
        let s = p.scenario
        let machine: Machine
        do {
            // The connection first: a bad URI fails before an image is built.
            let h = try openHypervisor()
            let generation: Generation
            if let files = s.machine.system {
                generation = try Generation.of(files)
            } else {
                generation = try self.generation(p.machineGeneration!)
            }
            let payload = try payloadDirectory(p)
            if let sig = Interruption.shared.requested { throw MachineError.interrupted("interrupted by \(sig)") }
            started(generation, h)
            observer?.machineBooting(s, accelerator: h.accelerator, uri: h.uri)
            machine = try Machine(name: "rehearse-\(runID)", generation: generation, spec: s.machine, hypervisor: h,
                                  runID: runID, scenario: s.name, allowConsole: s.allowConsole, directory: directory, payload: payload)
        } catch let e as MachineError {
            throw BootFailure(error: e, console: nil)
        }
        do {
            try machine.waitReady(deadline: deadline)
            try s.bootCheck.run(on: machine, deadline: deadline)
        } catch {
            let tail = machine.io.consoleTail(15)
            let answered = machine.readySeconds != nil
            machine.destroy()
            if let e = error as? CheckFailure { throw BootFailure(error: .scenario(e.message), console: tail, shellAnswered: answered) }
            throw BootFailure(error: error as? MachineError ?? .infrastructure("\(error)"), console: tail, shellAnswered: answered)
        }
        observer?.machineReady(s, seconds: machine.readySeconds ?? 0)
        return machine
    }

    static func skipped(_ step: Step) -> StepResult {
        StepResult(name: step.name, kind: step.kind, line: step.line, command: step.command, outcome: .skipped, seconds: 0)
    }

    static func outcome(_ e: MachineError) -> Outcome {
        switch e {
        case .scenario, .timeout: return .failed
        case .infrastructure: return .infrastructure
        case .interrupted: return .interrupted
        }
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
