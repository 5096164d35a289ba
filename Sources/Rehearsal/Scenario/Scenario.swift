import Foundation

/// A scenario: which machine to boot and the steps to check on it.
///
/// Read from YAML by `ScenarioParser`; see the README for the format. Every
/// element remembers its line so that errors can point at it.
public struct Scenario: Sendable {
    public var name: String
    /// The file it was read from (for messages and reports).
    public var file: String
    /// Its machines, in declaration order (one called `machine` for YAML's `machine:`).
    public var machines: [MachineRole]
    /// Its private networks (none for a single machine; `default` for
    /// several when none is declared).
    public var networks: [NetworkSpec] = []
    /// The first machine (the only one of a single-machine scenario).
    public var machine: MachineSpec {
        get { machines[0].spec }
        set { machines[0].spec = newValue }
    }
    /// Whether steps must say which machine they run on.
    public var hasSeveralMachines: Bool { machines.count > 1 }
    /// Whether its machines boot as named roles on networks (each in a
    /// folder of its own) rather than as the one plain machine.
    public var bootsRoles: Bool { hasSeveralMachines || !networks.isEmpty }

    /// Seconds for the whole scenario, boot included.
    public var timeout: Double
    public var steps: [Step]
    /// Console lines matching one of these are not treated as trouble.
    public var allowConsole: [ConsolePattern]
    /// What is checked after every boot of a systemd guest.
    public var bootCheck = BootCheck()

    public static let defaultTimeout: Double = 300

    public init(name: String, file: String, machine: MachineSpec, timeout: Double, steps: [Step], allowConsole: [ConsolePattern]) {
        self.init(name: name, file: file, machines: [MachineRole(name: "machine", line: machine.imageLine, spec: machine)],
                  timeout: timeout, steps: steps, allowConsole: allowConsole)
    }

    public init(name: String, file: String, machines: [MachineRole], networks: [NetworkSpec] = [], timeout: Double, steps: [Step],
                allowConsole: [ConsolePattern]) {
        precondition(!machines.isEmpty, "a scenario has a machine")
        self.name = name
        self.file = file
        self.machines = machines
        self.networks = networks
        self.timeout = timeout
        self.steps = steps
        self.allowConsole = allowConsole
    }

    /// Where every machine is on the scenario's networks (fresh carriers each call: one per run).
    public func networkPlan() -> NetworkPlan { NetworkPlan(roles: machines, networks: networks) }

    /// A scenario with no steps, for a machine booted only to be looked at.
    static func empty(machine: MachineSpec, name: String = "machine", timeout: Double = defaultTimeout) -> Scenario {
        Scenario(name: name, file: "(none)", machine: machine, timeout: timeout, steps: [], allowConsole: [])
    }
}

/// What to boot.
public struct MachineSpec: Sendable {
    /// A generation name, a recipe name under `Images/`, or a recipe path
    /// (`machine.generation:` or its older spelling `machine.image:`).
    public var image: String
    /// The line of `image:`, for errors about the image.
    public var imageLine: Int
    public var memoryMiB: Int
    public var cpus: Int
    /// A host directory to hand to the guest read-only at /mnt/payload.
    public var payload: PayloadSource?
    public var payloadLine: Int = 0
    /// Instead of a generation: a system given as files (a disk image, a NixOS closure).
    public var system: SystemFiles?
    /// An Ignition config handed to the guest through QEMU fw_cfg as
    /// `opt/com.coreos/config`, the way Fedora CoreOS expects it under libvirt.
    public var ignition: String?
    /// How to log in on the command channel, for an image with a getty there
    /// rather than a root shell.
    public var console: ConsoleLogin?
    /// cloud-init's NoCloud files, handed to the guest on a seed disk labelled `cidata`.
    public var cloudInit: CloudInitSeed.Files?
    /// Always boot, never start from a saved state (`cold_boot: true`).
    public var coldBoot = false
    /// Its cards on the scenario's private networks, given when it is about
    /// to boot (each run has networks of its own).
    public var network: MachineNetwork? = nil

    public static let defaultMemoryMiB = 256

    /// Boots `candidate` instead (a gate's `--candidate`): a disk image or
    /// NixOS system given by its path, or a generation's name.
    mutating func replaceSystem(with candidate: String) throws {
        if let files = SystemFiles.detect(candidate) {
            system = files
            image = files.displayName
        } else if [".qcow2", ".raw", ".img"].contains(where: { candidate.hasSuffix($0) }) {
            throw RehearsalError.badScenario(file: candidate, line: nil, "no such disk image or NixOS system")
        } else {
            system = nil
            image = candidate
        }
    }
}

/// A system to boot that is given as files rather than by a generation's name.
public enum SystemFiles: Sendable, Equatable {
    /// Any disk image with its own bootloader, booted by firmware; its format
    /// is qcow2 or raw (nil: what `qemu-img info` says).
    case diskImage(String, format: String?)
    /// A NixOS system closure: its toplevel directory, or a `result` link
    /// that `nixos-rebuild build` or `build-vm` left.
    case nixosSystem(String)

    /// The path the candidate was given as.
    public var path: String {
        switch self {
        case .diskImage(let p, _), .nixosSystem(let p): return p
        }
    }

    /// What to call it before it boots: the disk image's file name, the NixOS system's name.
    public var displayName: String {
        if case .nixosSystem(let p) = self, let system = try? NixOSSystem(path: p) { return system.name }
        return URL(fileURLWithPath: path).lastPathComponent
    }

    /// What a path on the command line (`gate --candidate PATH`) names: a
    /// directory holding a NixOS toplevel, or a disk image file; nil when
    /// nothing is there (then it is a generation's name).
    public static func detect(_ path: String) -> SystemFiles? {
        var isDir: ObjCBool = false
        let url = URL(fileURLWithPath: path).standardizedFileURL
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else { return nil }
        if isDir.boolValue {
            return NixOSSystem.looksLikeToplevel(url.path) ? .nixosSystem(url.path) : nil
        }
        return .diskImage(url.path, format: nil)
    }
}

/// Where a payload comes from: a host directory (relative to the scenario
/// file), or a directory a recipe builds (`image:RECIPE/NAME`).
public enum PayloadSource: Sendable, Equatable {
    case directory(String)
    case recipe(String, payload: String)
}

/// One step of a scenario.
public struct Step: Sendable {
    public var name: String
    public var line: Int
    /// Seconds for this step; nil means the action's default, bounded by the scenario's.
    public var timeout: Double?
    public var action: Action
    /// Set when the step is known to fail (`expect_failure: WHY`): its failure
    /// is reported with the reason and the scenario goes on; a pass fails it.
    public var expectedFailure: String? = nil
    /// Units this step is expected to leave failed (`allow_failed:`): the
    /// check at the end of the scenario lets them be.
    public var allowFailed: Set<String> = []
    /// The machine it runs on (`on:`); nil in a single-machine scenario.
    public var machine: String? = nil

    public enum Action: Sendable {
        /// Exit status 0 required.
        case succeed(String)
        /// A non-zero exit status required.
        case fail(String)
        /// Run and check `expect`.
        case run(String, Expectation)
        /// Retry until exit status 0 or the step's timeout.
        case waitUntilSucceeds(String)
        /// Retry until a non-zero exit status or the step's timeout.
        case waitUntilFails(String)
        /// Wait until the console log matches.
        case waitForConsole(ConsolePattern)
        /// The guest reboots itself with this command (default `reboot`);
        /// the step ends when the new boot's shell answers with a new boot id.
        case reboot(String)
        /// Cut the power with no warning and boot again from the same disk.
        case crash
        /// Wait until a systemd unit is active; fail at once if it fails.
        case waitForUnit(String)
        /// Wait until something listens on a TCP port in the guest.
        case waitForOpenPort(Int)
        /// Power off cleanly and boot another generation on the same disk.
        case boot(String)
        /// Keep the disk state and generation as they are now; with `memory`,
        /// the running machine too (a rollback resumes it instead of booting).
        case checkpoint(memory: Bool)
        /// Power off and boot the latest checkpoint (or the generation before the last `boot`).
        case rollback
        /// Assert what is booted: the generation's name and/or the kernel release (a regex, whole match).
        case booted(generation: String?, kernel: ConsolePattern?)
        /// Stop here for a person (`rehearse attach`, then `rehearse continue`),
        /// with a note for them; passes straight on when nobody is at a terminal.
        case pause(String?)
        /// Cut (`up: false`) or restore the machine's link to `network`
        /// (nil: its only network) while it runs (`link_down:`, `link_up:`).
        case link(up: Bool, network: String?)
    }

    /// Default step timeouts in seconds, by kind: commands should be quick;
    /// waits are for things that take time.
    public var defaultTimeout: Double {
        switch action {
        case .succeed, .fail, .run: return 60
        case .waitUntilSucceeds, .waitUntilFails, .waitForConsole: return 120
        case .reboot, .crash, .boot, .rollback: return 300
        case .waitForUnit, .waitForOpenPort, .checkpoint: return 120
        case .booted: return 60
        case .pause: return 60
        case .link: return 30
        }
    }

    /// The command this step runs, if any.
    public var command: String? {
        switch action {
        case .succeed(let c), .fail(let c), .run(let c, _), .waitUntilSucceeds(let c), .waitUntilFails(let c): return c
        case .waitForConsole, .reboot, .crash, .waitForUnit, .waitForOpenPort, .boot, .checkpoint, .rollback, .booted, .pause, .link: return nil
        }
    }

    /// The YAML key that names this step's kind.
    public var kind: String {
        switch action {
        case .succeed: return "succeed"
        case .fail: return "fail"
        case .run: return "run"
        case .waitUntilSucceeds: return "wait_until_succeeds"
        case .waitUntilFails: return "wait_until_fails"
        case .waitForConsole: return "wait_for_console"
        case .reboot: return "reboot"
        case .crash: return "crash"
        case .waitForUnit: return "wait_for_unit"
        case .waitForOpenPort: return "wait_for_open_port"
        case .boot: return "boot"
        case .checkpoint: return "checkpoint"
        case .rollback: return "rollback"
        case .booted: return "booted"
        case .pause: return "pause"
        case .link(let up, _): return up ? "link_up" : "link_down"
        }
    }
}

/// What a `run:` step expects; every field is optional.
public struct Expectation: Sendable {
    public var exit: Int32?
    public var stdoutContains: String?
    public var stdoutEquals: String?
    public var stdoutMatches: ConsolePattern?
    public var stderrContains: String?

    public init() {}

    /// stdout must be exactly `text`.
    public static func stdout(equals text: String) -> Expectation { var e = Expectation(); e.stdoutEquals = text; return e }
    /// stdout must contain `text`.
    public static func stdout(contains text: String) -> Expectation { var e = Expectation(); e.stdoutContains = text; return e }
    /// The exit status must be `status`.
    public static func exit(_ status: Int32) -> Expectation { var e = Expectation(); e.exit = status; return e }

    /// Checks `result`; returns every unmet expectation, empty when all hold.
    public func mismatches(_ result: CommandResult) -> [String] {
        var out: [String] = []
        let stdout = result.stdoutText, stderr = result.stderrText
        if let exit, result.status != exit { out.append("exit status \(result.status), expected \(exit)") }
        if let s = stdoutContains, !stdout.contains(s) { out.append("stdout does not contain \(s.debugDescription)") }
        if let s = stdoutEquals, stdout != s { out.append("stdout is \(Self.clip(stdout).debugDescription), expected \(s.debugDescription)") }
        if let p = stdoutMatches, !p.matches(stdout) { out.append("stdout does not match /\(p.source)/") }
        if let s = stderrContains, !stderr.contains(s) { out.append("stderr does not contain \(s.debugDescription)") }
        return out
    }

    static func clip(_ s: String, _ n: Int = 200) -> String { s.count <= n ? s : String(s.prefix(n)) + "…" }
}

/// A regular expression from a scenario, compiled once; `^` and `$` match at line breaks.
public struct ConsolePattern: @unchecked Sendable {
    // @unchecked: NSRegularExpression is immutable and documented thread-safe.
    public let source: String
    public let regex: NSRegularExpression

    public init(_ source: String) throws {
        self.source = source
        self.regex = try NSRegularExpression(pattern: source, options: [.anchorsMatchLines])
    }

    public func matches(_ text: String) -> Bool { firstMatch(in: text) != nil }

    /// Whether the pattern matches all of `text`.
    public func matchesWhole(_ text: String) -> Bool {
        guard let r = firstMatch(in: text) else { return false }
        return r == text.startIndex..<text.endIndex || (try? NSRegularExpression(pattern: "^(?:\(source))$"))
            .map { $0.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil } == true
    }

    /// The range of the first match in `text`, as a String range.
    public func firstMatch(in text: String) -> Range<String.Index>? {
        let ns = NSRange(text.startIndex..., in: text)
        guard let m = regex.firstMatch(in: text, range: ns) else { return nil }
        return Range(m.range, in: text)
    }
}

extension Scenario {
    /// The names of the machines a candidate replaces (`gate --machine`,
    /// `compare --machine`): those named, in the scenario's order, or every
    /// machine when none is named. A scenario written with one `machine:`
    /// has its machine replaced whatever the names: that machine is the host
    /// being upgraded. A name it does not have is refused.
    public func machinesNamed(_ names: [String]) throws -> [String] {
        let all = machines.map(\.name)
        guard !names.isEmpty, all != ["machine"] else { return all }
        if let unknown = names.first(where: { !all.contains($0) }) {
            throw RehearsalError.badScenario(file: file, line: nil, "no machine `\(unknown)` here (its machines: \(all.joined(separator: ", ")))")
        }
        return all.filter(names.contains)
    }
}
