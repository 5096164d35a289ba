import Foundation

/// A machine as a scenario written in Swift declares it: what it boots and
/// the settings a YAML scenario gives under `machine:`.
///
///     let server = try await scenario.machine(
///         MachineDeclaration(.generation("debian"), memoryMiB: 512, payload: .recipe("debian", payload: "repo")))
public struct MachineDeclaration: Sendable {
    /// What the machine boots.
    public enum Source: Sendable {
        /// A generation (`rehearse generations`) or a recipe under `Images/`.
        case generation(String)
        /// Any disk image with its own bootloader, booted by firmware from an overlay.
        case disk(String, format: String? = nil)
        /// A NixOS system closure (a toplevel, or nixos-rebuild's `result` link).
        case nixos(String)
    }

    public var source: Source
    public var memoryMiB: Int
    public var cpus: Int
    /// Handed to the guest read-only at `/mnt/payload`.
    public var payload: PayloadSource?
    /// Handed to the guest through QEMU fw_cfg as `opt/com.coreos/config`.
    public var ignition: String?
    /// A NoCloud seed (volume label `cidata`) for cloud-init.
    public var cloudInit: CloudInitSeed.Files?
    /// Console settings for an image with a getty on the channel.
    public var console: ConsoleLogin?
    /// The private networks it joins among several machines
    /// (`ScenarioContext.machines`); empty: the first network.
    public var networks: [String] = []

    public init(_ source: Source, memoryMiB: Int = MachineSpec.defaultMemoryMiB, cpus: Int = 1, payload: PayloadSource? = nil,
                ignition: String? = nil, cloudInit: CloudInitSeed.Files? = nil, console: ConsoleLogin? = nil, networks: [String] = []) {
        self.networks = networks
        self.source = source
        self.memoryMiB = memoryMiB
        self.cpus = cpus
        self.payload = payload
        self.ignition = ignition
        self.cloudInit = cloudInit
        self.console = console
    }

    /// The same machine as a YAML scenario's `machine:` would give it.
    func spec(line: Int) -> MachineSpec {
        var spec = MachineSpec(image: "", imageLine: line, memoryMiB: memoryMiB, cpus: cpus)
        switch source {
        case .generation(let name): spec.image = name
        case .disk(let path, let format):
            spec.system = .diskImage(URL(fileURLWithPath: path).standardizedFileURL.path, format: format)
            spec.image = URL(fileURLWithPath: path).lastPathComponent
        case .nixos(let path):
            spec.system = .nixosSystem(URL(fileURLWithPath: path).standardizedFileURL.path)
            spec.image = spec.system!.displayName
        }
        spec.payload = payload
        spec.payloadLine = line
        spec.ignition = ignition
        spec.cloudInit = cloudInit
        spec.console = console
        return spec
    }
}
