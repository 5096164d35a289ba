import Foundation
import Yams

/// Reads a scenario from YAML, refusing anything it doesn't understand.
///
/// Unknown keys, unknown step kinds, wrong types and bad regular expressions
/// are errors that name the file and line; nothing is guessed.
///
///     let scenario = try ScenarioParser.parse(file: "Scenarios/smoke.yaml")
public enum ScenarioParser {
    static let topKeys: Set = ["name", "machine", "machines", "networks", "timeout", "steps", "allow_console", "boot_check"]
    static let bootCheckKeys: Set = ["allow_failed", "timeout"]
    static let machineKeys: Set = ["image", "generation", "disk", "format", "nixos", "ignition", "cloud_init", "console", "memory", "cpus", "payload", "cold_boot"]
    static let stepKinds = ["succeed", "fail", "run", "wait_until_succeeds", "wait_until_fails", "wait_for_console", "reboot",
                            "wait_for_unit", "wait_for_open_port", "crash", "boot", "booted", "checkpoint", "rollback", "pause", "link_down", "link_up"]
    /// Step kinds that may stand alone as a bare word (`- reboot`), with this default value.
    static let bareSteps: [String: Step.Action] = ["reboot": .reboot("reboot"), "crash": .crash, "checkpoint": .checkpoint(memory: false), "rollback": .rollback, "pause": .pause(nil)]
    static let stepKeys: Set = ["name", "timeout", "expect", "expect_failure", "allow_failed", "on"]
    static let bootedKeys: Set = ["generation", "kernel"]
    static let checkpointKeys: Set = ["memory"]
    static let expectKeys: Set = ["exit", "stdout_contains", "stdout_equals", "stdout_matches", "stderr_contains"]

    public static func parse(file path: String) throws -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RehearsalError.badScenario(file: path, line: nil, "cannot read the file: \(error.localizedDescription)")
        }
        return try parse(text: text, file: path)
    }

    public static func parse(text: String, file: String) throws -> Scenario {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            throw yamlError(e, file: file)
        } catch {
            throw RehearsalError.badScenario(file: file, line: nil, "not valid YAML: \(error)")
        }
        let r = Reader(file: file)
        guard let node, let top = node.mapping else {
            throw RehearsalError.badScenario(file: file, line: node?.mark?.line ?? 1, "a scenario is a mapping with `machine:` and `steps:`")
        }
        try r.checkKeys(top, allowed: topKeys, in: "scenario")

        let defaultName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let name = try top["name"].map { try r.string($0, "name") } ?? defaultName

        let (machines, networks) = try parseMachines(top, node, r)

        let timeout = try top["timeout"].map { try r.seconds($0, "timeout") } ?? Scenario.defaultTimeout
        let allow = try top["allow_console"].map { n -> [ConsolePattern] in
            guard let seq = n.sequence else { throw r.error(n, "`allow_console` is a list of regular expressions") }
            return try seq.map { try r.pattern($0, "allow_console") }
        } ?? []

        guard let stepsNode = top["steps"] else { throw r.error(node, "missing `steps:`") }
        guard let seq = stepsNode.sequence else { throw r.error(stepsNode, "`steps` is a list") }
        var steps: [Step] = []
        for (i, s) in seq.enumerated() { steps.append(try parseStep(s, index: i + 1, r)) }
        try checkMachines(of: steps, machines: machines, networks: networks, r)
        var scenario = Scenario(name: name, file: file, machines: machines, networks: networks, timeout: timeout, steps: steps, allowConsole: allow)
        if let n = top["boot_check"] { scenario.bootCheck = try parseBootCheck(n, r) }
        return scenario
    }

    static func parseBootCheck(_ n: Node, _ r: Reader) throws -> BootCheck {
        var check = BootCheck()
        if let b = n.scalar?.string {
            guard let on = Bool(b) else { throw r.error(n, "`boot_check` is true, false, or a mapping with allow_failed and timeout") }
            check.enabled = on
            return check
        }
        guard let m = n.mapping else { throw r.error(n, "`boot_check` is true, false, or a mapping with allow_failed and timeout") }
        try r.checkKeys(m, allowed: bootCheckKeys, in: "boot_check")
        if let a = m["allow_failed"] { check.allowFailed = try parseUnits(a, r) }
        if let t = m["timeout"] { check.timeout = try r.seconds(t, "timeout") }
        return check
    }

    /// `allow_failed: [unit, …]`; a name without a dot is a `.service`.
    static func parseUnits(_ a: Node, _ r: Reader) throws -> Set<String> {
        guard let seq = a.sequence else { throw r.error(a, "`allow_failed` is a list of unit names") }
        return Set(try seq.map { u -> String in
            let s = try r.string(u, "allow_failed")
            return s.contains(".") ? s : s + ".service"
        })
    }

    static func parseMachine(_ n: Node, _ r: Reader, allowed: Set<String> = machineKeys, context: String = "machine") throws -> MachineSpec {
        guard let m = n.mapping else { throw r.error(n, "`\(context)` is a mapping with at least `generation:`") }
        try r.checkKeys(m, allowed: allowed, in: context)
        if m["image"] != nil, let g = m.keys.first(where: { $0.string == "generation" }) {
            throw r.error(g, "`machine` names both `image` and `generation` (they mean the same; keep one)")
        }
        let base = URL(fileURLWithPath: r.file).deletingLastPathComponent()
        /// A host file named in the scenario (relative to it), which must exist.
        func hostPath(_ key: String, in map: Node? = nil) throws -> String? {
            guard let node = (map?.mapping ?? m)[key] else { return nil }
            let text = try r.string(node, key)
            let url = (text.hasPrefix("/") ? URL(fileURLWithPath: text) : base.appendingPathComponent(text)).standardizedFileURL
            var isDir: ObjCBool = false
            guard !text.isEmpty, FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue else {
                throw r.error(node, "`\(key)`: no such file \(url.path)")
            }
            return url.path
        }
        // What to boot: a generation by name, or a system given as files.
        var system: SystemFiles?
        var systemKey: String?
        if let disk = try hostPath("disk") { system = .diskImage(disk, format: nil); systemKey = "disk" }
        // Checked when the scenario is prepared, so that a gate's candidate can
        // stand in for a system this host doesn't have (`/run/current-system`).
        if let node = m["nixos"] {
            if systemKey != nil { throw r.error(node, "`machine` names both a `disk` image and a `nixos` system; keep one") }
            let text = try r.string(node, "nixos")
            guard !text.isEmpty else { throw r.error(node, "`nixos` is empty") }
            system = .nixosSystem((text.hasPrefix("/") ? URL(fileURLWithPath: text) : base.appendingPathComponent(text)).standardizedFileURL.path)
            systemKey = "nixos"
        }
        let imageNode = m["generation"] ?? m["image"]
        if let systemKey, let g = imageNode { throw r.error(g, "`machine` names both a generation and a `\(systemKey)`; keep one") }
        guard let imageNode = imageNode ?? systemKey.flatMap({ m[$0] }) else {
            throw r.error(n, "missing `machine.generation` (or `machine.disk` for any disk image, or `machine.nixos` for a NixOS system)")
        }
        let image = try system?.displayName ?? r.string(imageNode, "generation")
        guard !image.isEmpty else { throw r.error(imageNode, "`generation` is empty") }
        let memory = try m["memory"].map { try r.int($0, "memory", min: 64, max: 1 << 20) } ?? MachineSpec.defaultMemoryMiB
        let cpus = try m["cpus"].map { try r.int($0, "cpus", min: 1, max: 64) } ?? 1
        var spec = MachineSpec(image: image, imageLine: imageNode.mark?.line ?? 0, memoryMiB: memory, cpus: cpus)
        spec.ignition = try hostPath("ignition")
        if let f = m["format"] {
            let format = try r.string(f, "format")
            guard ["qcow2", "raw"].contains(format) else { throw r.error(f, "`format` is qcow2 or raw") }
            guard case .diskImage(let disk, _)? = system else { throw r.error(f, "`format` describes a `disk` image") }
            system = .diskImage(disk, format: format)
        }
        spec.system = system
        if let c = m["cold_boot"] { spec.coldBoot = try r.bool(c, "cold_boot") }
        if let c = m["console"] {
            guard let cm = c.mapping, let user = cm["login"] else {
                throw r.error(c, "`console` is a mapping with `login:` (a user name) and optionally `password:`")
            }
            try r.checkKeys(cm, allowed: ["login", "password"], in: "console")
            let name = try r.string(user, "login")
            guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0.isNewline }) else { throw r.error(user, "`login` is a user name") }
            let password = try cm["password"].map { try r.string($0, "password") }
            if let password, password.contains(where: \.isNewline) { throw r.error(cm["password"]!, "`password` is one line") }
            spec.console = ConsoleLogin(user: name, password: password)
        }
        if let c = m["cloud_init"] {
            guard let cm = c.mapping else { throw r.error(c, "`cloud_init` is a mapping with `user_data:` and optionally `meta_data:`") }
            try r.checkKeys(cm, allowed: ["user_data", "meta_data", "network_config"], in: "cloud_init")
            guard let user = try hostPath("user_data", in: c) else { throw r.error(c, "`cloud_init` needs `user_data: FILE`") }
            spec.cloudInit = CloudInitSeed.Files(userData: user, metaData: try hostPath("meta_data", in: c),
                                                 networkConfig: try hostPath("network_config", in: c))
        }
        if let p = m["payload"] {
            let text = try r.string(p, "payload")
            spec.payloadLine = p.mark?.line ?? 0
            if text.hasPrefix("image:") {
                let parts = text.dropFirst("image:".count).split(separator: "/", maxSplits: 1).map(String.init)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw r.error(p, "`payload: image:RECIPE/NAME` names a payload a recipe builds, such as image:debian/repo")
                }
                spec.payload = .recipe(parts[0], payload: parts[1])
            } else {
                guard !text.isEmpty else { throw r.error(p, "`payload` is empty") }
                let url = text.hasPrefix("/") ? URL(fileURLWithPath: text) : base.appendingPathComponent(text)
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), isDir.boolValue else {
                    throw r.error(p, "the payload \(url.standardizedFileURL.path) is not a directory")
                }
                spec.payload = .directory(url.standardizedFileURL.path)
            }
        }
        return spec
    }

    static func parseStep(_ n: Node, index: Int, _ r: Reader) throws -> Step {
        let line = n.mark?.line ?? 0
        if let word = n.scalar?.string, let action = bareSteps[word] {
            return Step(name: word, line: line, timeout: nil, action: action)
        }
        guard let m = n.mapping else {
            throw r.error(n, "a step is a mapping such as `- succeed: COMMAND` (one of \(stepKinds.joined(separator: ", ")))")
        }
        let kinds = m.keys.compactMap(\.string).filter { stepKinds.contains($0) }
        let unknown = m.keys.filter { k in !(k.string.map { stepKinds.contains($0) || stepKeys.contains($0) } ?? false) }
        if let k = unknown.first {
            throw r.error(k, "unknown step key `\(k.string ?? "?")` (step kinds: \(stepKinds.joined(separator: ", ")); other keys: name, timeout, expect, expect_failure, allow_failed, on)")
        }
        guard kinds.count == 1, let kind = kinds.first, let valueNode = m[kind] else {
            throw r.error(n, kinds.isEmpty ? "step \(index) has no kind (one of \(stepKinds.joined(separator: ", ")))"
                                           : "step \(index) has more than one kind: \(kinds.joined(separator: ", "))")
        }
        if m["expect"] != nil && kind != "run" { throw r.error(m.keys.first { $0.string == "expect" }!, "`expect` belongs to a `run:` step") }
        let expectedFailure = try m["expect_failure"].map { n -> String in
            let why = try r.string(n, "expect_failure")
            guard !why.isEmpty else { throw r.error(n, "`expect_failure` says why the step is expected to fail") }
            return why
        }
        // The units this step is expected to leave failed (the end-of-scenario check lets them be).
        let allowFailed = try m["allow_failed"].map { try parseUnits($0, r) } ?? []
        let on = try m["on"].map { n -> String in
            let machine = try r.string(n, "on")
            guard !machine.isEmpty else { throw r.error(n, "`on` names the machine the step runs on") }
            return machine
        }
        func step(_ name: String, _ timeout: Double?, _ action: Step.Action, machine: String? = nil) -> Step {
            var s = Step(name: name, line: line, timeout: timeout, action: action, expectedFailure: expectedFailure)
            s.allowFailed = allowFailed
            s.machine = machine ?? on
            return s
        }
        if kind == "link_down" || kind == "link_up" {
            if let o = m.keys.first(where: { $0.string == "on" }) {
                throw r.error(o, "`\(kind)` names its machine itself: write `\(kind): MACHINE` or `\(kind): {machine: M, network: N}`")
            }
            let (machine, network) = try parseLink(valueNode, kind: kind, r)
            let name = try m["name"].map { try r.string($0, "name") } ?? "\(kind)\(network.map { " (\($0))" } ?? "")"
            let timeout = try m["timeout"].map { try r.seconds($0, "timeout") }
            return step(name, timeout, .link(up: kind == "link_up", network: network), machine: machine)
        }
        if kind == "booted" {
            guard let b = valueNode.mapping else { throw r.error(valueNode, "`booted` is a mapping with `generation:` and/or `kernel:`") }
            try r.checkKeys(b, allowed: bootedKeys, in: "booted")
            let generation = try b["generation"].map { try r.string($0, "generation") }
            let kernel = try b["kernel"].map { try r.pattern($0, "kernel") }
            guard generation != nil || kernel != nil else { throw r.error(valueNode, "`booted` needs `generation:` or `kernel:`") }
            let what = [generation.map { "generation \($0)" }, kernel.map { "kernel \($0.source)" }].compactMap { $0 }.joined(separator: ", ")
            let name = try m["name"].map { try r.string($0, "name") } ?? "booted: \(what)"
            let timeout = try m["timeout"].map { try r.seconds($0, "timeout") }
            return step(name, timeout, .booted(generation: generation, kernel: kernel))
        }
        if kind == "checkpoint", let c = valueNode.mapping {
            // `- checkpoint: {memory: true}` keeps the running machine too.
            try r.checkKeys(c, allowed: checkpointKeys, in: "checkpoint")
            let memory = try c["memory"].map { try r.bool($0, "memory") } ?? false
            let name = try m["name"].map { try r.string($0, "name") } ?? (memory ? "checkpoint (memory)" : "checkpoint")
            let timeout = try m["timeout"].map { try r.seconds($0, "timeout") }
            return step(name, timeout, .checkpoint(memory: memory))
        }
        if let bare = bareSteps[kind], let v = valueNode.scalar?.string, ["", "~", "null"].contains(v) {
            // `- checkpoint:` in mapping form, to give it a name or timeout.
            let name = try m["name"].map { try r.string($0, "name") } ?? kind
            let timeout = try m["timeout"].map { try r.seconds($0, "timeout") }
            return step(name, timeout, bare)
        }
        let value = try r.string(valueNode, kind)
        guard !value.isEmpty else { throw r.error(valueNode, "`\(kind)` is empty") }
        let action: Step.Action
        switch kind {
        case "succeed": action = .succeed(value)
        case "fail": action = .fail(value)
        case "wait_until_succeeds": action = .waitUntilSucceeds(value)
        case "wait_until_fails": action = .waitUntilFails(value)
        case "wait_for_console": action = .waitForConsole(try r.pattern(valueNode, kind))
        case "reboot": action = .reboot(value)
        case "boot": action = .boot(value)
        case "pause": action = .pause(value)
        case "checkpoint", "rollback", "crash":
            throw r.error(valueNode, kind == "checkpoint" ? "`checkpoint` takes no value: write `- checkpoint`, or `- checkpoint: {memory: true}` to keep the running machine too"
                                                            : "`\(kind)` takes no value: write `- \(kind)`")
        case "wait_for_unit":
            guard value.range(of: #"^[A-Za-z0-9:_.@\\-]+$"#, options: .regularExpression) != nil else {
                throw r.error(valueNode, "`wait_for_unit` takes a unit name such as nginx.service")
            }
            action = .waitForUnit(value.contains(".") ? value : value + ".service")
        case "wait_for_open_port":
            guard let port = Int(value), (1...65535).contains(port) else {
                throw r.error(valueNode, "`wait_for_open_port` takes a TCP port number from 1 to 65535")
            }
            action = .waitForOpenPort(port)
        default: action = .run(value, try m["expect"].map { try parseExpect($0, r) } ?? Expectation())
        }
        if kind != "wait_for_console", let bad = value.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            throw r.error(valueNode, "the command contains control character 0x\(String(bad.value, radix: 16))")
        }
        let name = try m["name"].map { try r.string($0, "name") } ?? "\(kind): \(value.split(separator: "\n").first.map(String.init) ?? value)"
        let timeout = try m["timeout"].map { try r.seconds($0, "timeout") }
        return step(name, timeout, action)
    }

    static func parseExpect(_ n: Node, _ r: Reader) throws -> Expectation {
        guard let m = n.mapping else { throw r.error(n, "`expect` is a mapping") }
        try r.checkKeys(m, allowed: expectKeys, in: "expect")
        var e = Expectation()
        e.exit = try m["exit"].map { Int32(try r.int($0, "exit", min: 0, max: 255)) }
        e.stdoutContains = try m["stdout_contains"].map { try r.string($0, "stdout_contains") }
        e.stdoutEquals = try m["stdout_equals"].map { try r.string($0, "stdout_equals") }
        e.stdoutMatches = try m["stdout_matches"].map { try r.pattern($0, "stdout_matches") }
        e.stderrContains = try m["stderr_contains"].map { try r.string($0, "stderr_contains") }
        return e
    }

    static func yamlError(_ e: YamlError, file: String) -> RehearsalError {
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            // The context (e.g. "while scanning a quoted scalar") points where the trouble began.
            let line = context?.mark.line ?? mark.line
            return RehearsalError.badScenario(file: file, line: line, "not valid YAML: \(context.map { "\($0.text), " } ?? "")\(problem)")
        default:
            return RehearsalError.badScenario(file: file, line: nil, "not valid YAML: \(String(describing: e).split(separator: "\n").first ?? "")")
        }
    }

    /// Typed access to YAML nodes, with errors that carry the node's line.
    struct Reader {
        let file: String

        func error(_ n: Node, _ message: String) -> RehearsalError {
            RehearsalError.badScenario(file: file, line: n.mark?.line, message)
        }

        func checkKeys(_ m: Node.Mapping, allowed: Set<String>, in context: String) throws {
            for k in m.keys {
                guard let s = k.string, allowed.contains(s) else {
                    throw error(k, "unknown key `\(k.string ?? "?")` in \(context) (allowed: \(allowed.sorted().joined(separator: ", ")))")
                }
            }
        }

        func string(_ n: Node, _ key: String) throws -> String {
            guard let s = n.scalar else { throw error(n, "`\(key)` must be a string") }
            return s.string
        }

        func int(_ n: Node, _ key: String, min: Int, max: Int) throws -> Int {
            guard let s = n.scalar, let v = Int(s.string) else { throw error(n, "`\(key)` must be a whole number") }
            guard v >= min, v <= max else { throw error(n, "`\(key)` must be between \(min) and \(max), not \(v)") }
            return v
        }

        func bool(_ n: Node, _ key: String) throws -> Bool {
            guard let s = n.scalar, let v = Bool(s.string) else { throw error(n, "`\(key)` is true or false") }
            return v
        }

        func seconds(_ n: Node, _ key: String) throws -> Double {
            guard let s = n.scalar, let v = Double(s.string), v > 0, v.isFinite else {
                throw error(n, "`\(key)` must be a positive number of seconds")
            }
            return v
        }

        func pattern(_ n: Node, _ key: String) throws -> ConsolePattern {
            let s = try string(n, key)
            do { return try ConsolePattern(s) } catch {
                throw self.error(n, "`\(key)` is not a valid regular expression: \(s.debugDescription)")
            }
        }
    }
}
