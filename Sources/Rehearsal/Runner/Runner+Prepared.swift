import Foundation

/// Before anything boots: a scenario checked, with every generation, system
/// and payload it names found (and a gate's candidate in place).
extension Runner {
    /// A scenario checked and ready to run: every generation it names
    /// (`machine:` and `boot:` steps) and its payload are found.
    public struct Prepared: Sendable {
        public var scenario: Scenario
        /// Reference → the recipe that builds it and the generation's name there.
        public var generations: [String: GenerationReference]
        /// Recipe name → the recipe that builds a machine's payload (`payload: image:RECIPE/NAME`).
        public var payloadRecipes: [String: ImageRecipe] = [:]
        /// The machine whose image, digest and kernel the result reports:
        /// the first a gate's candidate replaced, else the first declared.
        /// nil: whichever single machine boots.
        public var subject: String?
        /// The machines whose system a candidate replaced (a gate's, a
        /// compare side's); nil when none was. A bundle keeps it for replay.
        public var replaced: [String]?

        /// Where the subject is among the scenario's machines (the first when none is named).
        var subjectIndex: Int { scenario.machines.firstIndex { $0.name == subject } ?? 0 }

        /// The machine's generation; nil when it boots a system given as files.
        public var machineGeneration: GenerationReference? {
            scenario.machine.system == nil ? generations[scenario.machine.image] : nil
        }

        /// The scenario as one of its machines sees it: that machine first
        /// and alone, with its cards on the run's networks.
        func role(_ name: String, network: MachineNetwork?) -> Prepared {
            var p = self
            var role = scenario.machines.first { $0.name == name } ?? scenario.machines[0]
            role.spec.network = network
            p.scenario.machines = [role]
            return p
        }
    }

    public struct GenerationReference: Sendable {
        /// The recipe that builds it; nil for a capture of a host.
        public var recipe: ImageRecipe?
        /// nil: the recipe's first generation.
        public var name: String?
        /// A host's capture (`rehearse host capture`), found when the scenario was read.
        public var captured: Generation?
        public init(recipe: ImageRecipe, name: String?) {
            self.recipe = recipe
            self.name = name
        }
        public init(captured: Generation) {
            self.name = captured.name
            self.captured = captured
        }

        /// What `reference` names: a generation or recipe that a recipe in
        /// `searchPaths` builds, else a capture of a host under `state`.
        public static func named(_ reference: String, searchPaths: [URL], state: StateDirectory = .fromEnvironment()) throws -> GenerationReference {
            do {
                let (recipe, name) = try ImageRecipe.resolve(reference, searchPaths: searchPaths)
                return GenerationReference(recipe: recipe, name: name)
            } catch RehearsalError.Code.unknownImage {
                guard let g = HostCapture.latest(reference, state: state) else { throw RehearsalError.imageNotFound(reference, searched: searchPaths.map(\.path) + ["the captures in \(state.hostCaptures.path)"]) }
                return GenerationReference(captured: g)
            }
        }
    }

    /// Parses every file, finds every image and checks every disk image before anything boots.
    /// Throws the first `RehearsalError` (one line, naming file and line).
    /// With `generation`, that generation (a gate's candidate) takes the
    /// place of the one each scenario's `machine:` names; with `machines`
    /// as well, only in the machines of those names (`gate --machine`).
    public static func prepare(files: [String], generation: String? = nil, machines: [String] = []) throws -> [Prepared] {
        try files.map { f in try prepare(ScenarioParser.parse(file: f), generation: generation, machines: machines) }
    }

    /// Finds every image a parsed (or built in code) scenario names, for every machine.
    static func prepare(_ scenario: Scenario, generation: String? = nil, machines named: [String] = []) throws -> Prepared {
        var s = scenario
        let f = s.file
        let replaced = try s.machinesNamed(named)
        let paths = ImageRecipe.searchPaths(scenarioFile: f)
        func find(_ reference: String, line: Int) throws -> GenerationReference {
            do {
                return try GenerationReference.named(reference, searchPaths: paths)
            } catch let e as RehearsalError {
                throw e.at(f, line: line)
            }
        }
        var generations: [String: GenerationReference] = [:]
        var payloadRecipes: [String: ImageRecipe] = [:]
        for i in s.machines.indices {
            // A gate's candidate stands in for the system of every machine it replaces.
            if let generation, replaced.contains(s.machines[i].name) { try s.machines[i].spec.replaceSystem(with: generation) }
            let m = s.machines[i].spec
            if case .nixosSystem(let top)? = m.system, !NixOSSystem.looksLikeToplevel(top) {
                throw RehearsalError.badScenario(file: f, line: m.imageLine, "`nixos`: \(top) is not a NixOS system (no kernel, initrd, kernel-params and init there or in its system/)")
            }
            if case let .diskImage(disk, format)? = m.system {
                // Wrong format or no boot sector: refused now, not after a boot that finds nothing.
                do { try DiskImageCheck.check(disk, declared: format) } catch let e as RehearsalError where generation == nil {
                    throw RehearsalError(e.code, e.description, file: f, line: m.imageLine)
                }
            }
            if m.system == nil, generations[m.image] == nil { generations[m.image] = try find(m.image, line: m.imageLine) }
            if case .recipe(let name, _)? = m.payload, payloadRecipes[name] == nil {
                do {
                    payloadRecipes[name] = try ImageRecipe.resolve(name, searchPaths: paths).recipe
                } catch let e as RehearsalError {
                    throw e.at(f, line: m.payloadLine)
                }
            }
        }
        for step in s.steps {
            if case .boot(let name) = step.action, generations[name] == nil { generations[name] = try find(name, line: step.line) }
        }
        let subject = generation == nil ? s.machines.first?.name : replaced.first
        return Prepared(scenario: s, generations: generations, payloadRecipes: payloadRecipes, subject: subject,
                        replaced: generation == nil ? nil : replaced)
    }
}
