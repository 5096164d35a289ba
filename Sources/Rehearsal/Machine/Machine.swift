import Foundation
import Libvirt

/// One guest: its disk, its libvirt domain while powered on, its serial
/// console and command channel, and everything they delivered.
///
/// The machine owns its domain and every file it made (disk overlays,
/// checkpoints, the payload disk): `destroy()` is its one close, it is called
/// on every path out of a run (pass, failure, timeout, signal, cancellation),
/// and a second SIGINT during a run cuts the power from the emergency hook as
/// well. A machine outlives its power-ons: `powerCycle`, `boot(_:)` and
/// `rollback` stop the domain and start a new one on the same disk chain.
///
/// An actor: one scenario drives it step by step, while libvirt's event
/// thread feeds its `io`. Blocking libvirt calls run off the cooperative
/// pool (`offload`), so many machines can be driven at once.
public actor Machine {
    public nonisolated let name: String
    public nonisolated let io: MachineIO
    public nonisolated let shell: ShellSession
    /// The domain XML of the current power-on.
    public private(set) var xml: String = ""
    /// Seconds from `createDomain` to the shell answering (set by `waitReady`).
    public private(set) var readySeconds: Double?
    /// Seconds this machine's reboots spent waiting for a boot slot: time that
    /// does not count against a step's deadline (see `withBootSlot`).
    public private(set) var slotWaitSeconds: Double = 0
    public nonisolated let started: Stopwatch
    /// The generation booted now.
    public internal(set) var generation: Generation
    /// Every boot so far, first one first.
    public internal(set) var boots: [BootRecord] = []

    // Internal rather than private: warm starts (Machine+SavedState.swift) use them.
    let hypervisor: Hypervisor
    let spec: MachineSpec
    let runID: String
    let scenario: String
    let directory: URL
    nonisolated let power = PowerSwitch()
    private var destroyed = false
    var isDestroyed: Bool { destroyed }
    var files: MachineFiles
    /// Checkpoints, latest last (Machine+Checkpoint.swift).
    var checkpoints: [Checkpoint] = []
    /// The generation booted before the last `boot(_:)`.
    var previousGeneration: Generation?
    private nonisolated let hook: UUID
    /// The private networks whose link a step cut (kept across power-ons).
    var linksDown: Set<String> = []
    /// How the next boot came about, for `boots`.
    var nextBootCause = "power on"
    /// Warm starts: the store, and this machine's part (making a state, restored from one).
    let savedStates: SavedStateStore?
    var warm: WarmPart = .none
    /// The saved state this machine was restored from, if it was.
    public internal(set) var restoredFrom: SavedState?
    /// What happened to its warm start, for people ("restored from …", "boots cold: …").
    public internal(set) var startNote: String?

    /// Starts a machine from `generation` and attaches to its consoles.
    /// Transcripts go into `directory` (`console.log`, `channel.log`,
    /// `channel-trace.log`); so do
    /// the disk overlays and the payload disk made from `payload`.
    public init(name: String, generation: Generation, spec: MachineSpec, hypervisor: Hypervisor,
                runID: String, scenario: String, allowConsole: [ConsolePattern], directory: URL, payload: URL? = nil,
                savedStates: SavedStateStore? = nil) async throws {
        try HostMemory.check(needMiB: spec.memoryMiB)
        let files = try await offload { try MachineFiles.make(for: generation, spec: spec, payload: payload, in: directory) }
        let started = Stopwatch()
        let log = ConsoleLog(started: started, transcript: directory.appendingPathComponent("console.log"), allowed: allowConsole)
        self.name = name
        self.generation = generation
        self.spec = spec
        self.runID = runID
        self.scenario = scenario
        self.directory = directory
        self.started = started
        self.hypervisor = hypervisor
        self.files = files
        self.savedStates = savedStates
        let io = MachineIO(log: log, channelTranscript: directory.appendingPathComponent("channel.log"),
                           channelTrace: ChannelTrace(started: started, file: directory.appendingPathComponent("channel-trace.log")))
        self.io = io
        let power = self.power
        self.shell = ShellSession(io: io) { power.channel }
        self.hook = Interruption.shared.addEmergencyHook { power.cut() }
        do {
            try await firstPowerOn()
        } catch {
            Interruption.shared.removeEmergencyHook(hook)
            self.files.remove()
            throw error
        }
    }

    deinit {
        // Normally `destroy()` ran already; this is the last line of defence.
        power.cut()
        Interruption.shared.removeEmergencyHook(hook)
    }

    /// The domain for booting the current generation from the current disk.
    func domainXML() -> DomainXML {
        let g = generation
        var x = DomainXML(name: name, accelerator: hypervisor.accelerator, memoryMiB: spec.memoryMiB, cpus: spec.cpus,
                          kernel: g.boot == .direct ? g.kernel : nil, initrd: g.boot == .direct ? g.initrd : nil,
                          cmdline: g.boot == .direct ? (g.cmdline ?? "console=ttyS0,115200") : nil,
                          runID: runID, scenario: scenario)
        x.disk = files.disk?.active.path
        // build-vm's root drive has serial `root` (/dev/disk/by-id/virtio-root).
        x.diskSerial = g.freshRootLabel == nil ? nil : "root"
        x.readOnlyDisks = files.readOnlyDisks
        x.share = g.nixStore.map { ($0, NixOSSystem.storeTag) }
        x.ignition = files.ignition?.path
        x.interfaces = spec.network?.interfaces ?? []
        x.linksDown = linksDown
        return x
    }

    /// A save image to restore, and the domain to restore it as: the one its
    /// header carries (`inHeader`: a clone's rewritten copy), or `xml` handed
    /// to libvirt beside it (the same domain on other disk files).
    struct Restoring: Sendable {
        let file: URL
        let xml: String
        let inHeader: Bool
    }

    /// Creates the domain (or restores `saved`) and attaches to its consoles; on failure nothing runs.
    func powerOn(restoring saved: Restoring? = nil) async throws {
        let xml = saved?.xml ?? domainXML().render()
        self.xml = xml
        let name = self.name
        try? xml.write(to: directory.appendingPathComponent("domain.xml"), atomically: true, encoding: .utf8)
        let (connection, io, power) = (hypervisor.connection, self.io, self.power)
        try await offload {
            let domain: Domain
            do {
                domain = try saved.map { try connection.restoreDomain(from: $0.file.path, name: name, xml: $0.inHeader ? nil : $0.xml) }
                    ?? connection.createDomain(xml: xml)
            } catch let e as LibvirtError {
                throw RehearsalError.infrastructure("\(saved == nil ? "starting" : "restoring") the machine failed: \(e.message)", underlying: e)
            }
            // From here on the domain exists: any failure must destroy it.
            do {
                let watch = try LifecycleWatch(domain: domain) { io.lifecycle($0) }
                let serial = try ConsoleStream(domain: domain, device: DomainXML.serialDevice) { io.serialEvent($0) }
                let channel = try ConsoleStream(domain: domain, device: DomainXML.channelDevice) { io.channelEvent($0) }
                power.set(.init(domain: domain, serial: serial, channel: channel, watch: watch))
            } catch {
                io.markStopping()
                try? domain.destroy()
                throw RehearsalError.infrastructure("attaching to the machine's consoles failed: \(error)")
            }
        }
    }

    /// Cuts the power of the current boot; the disk stays.
    func powerOff() async {
        guard power.isOn else { return }
        io.markStopping()
        let power = self.power
        await offload { power.cut() }
    }

    /// Starts a new power-on of the same machine (after `powerOff`) and waits
    /// for its shell. Returns `deadline` moved on by the wait for a boot slot.
    func powerOnAgain(cause: String, deadline: Deadline) async throws -> Deadline {
        io.restart()
        nextBootCause = cause
        return try await withBootSlot(deadline: deadline) { deadline in
            try await powerOn()
            try await connected(deadline: deadline)
        }
    }

    /// Runs `body` holding one of the host's boot slots. The wait for the
    /// slot does not count against `deadline`: `body` gets it moved on by
    /// the wait, and so does what is returned.
    func withBootSlot(deadline: Deadline, _ body: (Deadline) async throws -> Void) async throws -> Deadline {
        let queued = Stopwatch()
        try await hypervisor.bootSlots.acquire()
        defer { hypervisor.bootSlots.release() }
        let waited = queued.seconds
        slotWaitSeconds += waited
        let moved = deadline.later(by: waited)
        try await body(moved)
        return moved
    }

    /// The libvirt domain of the current boot, if powered on.
    public nonisolated var domain: Domain? { power.domain }

    /// Waits until the guest's shell answers on the command channel.
    public func waitReady(deadline: Deadline) async throws {
        try await connected(deadline: deadline)
        readySeconds = started.seconds
    }

    /// After every boot: connect the shell, mount the payload, note the boot.
    func connected(deadline: Deadline) async throws {
        let clock = Stopwatch()
        if case .restored(let state, _) = warm, nextBootCause == "power on" {
            try await shell.resume(deadline: deadline)
            try await freshen(deadline: deadline)
            nextBootCause = "restore \(state.id)"
        } else {
            if let login = spec.console { try await shell.logIn(login, deadline: deadline) }
            try await shell.connect(deadline: deadline)
        }
        if files.payload != nil {
            let r = try await run(Payload.mountCommand, deadline: deadline)
            guard r.status == 0 else {
                throw RehearsalError.scenario("mounting the payload at \(Payload.mountPoint) failed: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        if let network = spec.network {
            let r = try await run(network.setUpCommand, deadline: deadline)
            guard r.status == 0 else {
                throw RehearsalError.scenario("setting up the private network failed: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        let kernel = try? await run("uname -r", deadline: deadline).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        boots.append(BootRecord(generation: generation.name, digest: generation.digest, kernelRelease: kernel,
                                cause: nextBootCause, secondsToShell: clock.seconds, started: Date(timeIntervalSinceNow: -clock.seconds)))
        nextBootCause = "reboot"
    }

    /// Runs a command in the guest.
    public func run(_ command: String, deadline: Deadline) async throws -> CommandResult {
        try await shell.run(command, deadline: deadline)
    }

    /// The guest kernel's boot id, which changes with every boot.
    public func bootID(deadline: Deadline) async throws -> String {
        let r = try await run("cat /proc/sys/kernel/random/boot_id", deadline: deadline)
        let id = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, !id.isEmpty else { throw RehearsalError.scenario("cannot read the guest's boot id: \(r.stderrText)") }
        return id
    }

    /// Has the guest reboot itself with `command`, waits for libvirt to see
    /// the reset and for the new boot's shell to answer, and checks that the
    /// boot id changed. Returns the boot ids before and after.
    public func reboot(command: String, deadline given: Deadline) async throws -> (before: String, after: String) {
        var deadline = given
        let before = try await bootID(deadline: deadline)
        let count = io.rebootCount
        io.expectReboot(true)
        defer { io.expectReboot(false) }
        try await shell.launch(command, deadline: deadline)
        _ = try await io.wait(until: deadline, what: "waiting for the guest to reboot") { view in view.reboots > count ? true : nil }
        // Under TCG, every reset of a long-running QEMU makes the BIOS (which
        // runs for a direct kernel boot too) and GRUB slower: their stores
        // land on pages full of stale translated code. 6 s, then 16 s, 34 s,
        // and minutes after a long upgrade: a Debian guest's reset after
        // `apt-get install` took 216 s on a loaded CI host, and once more
        // than 300 s. A fresh QEMU on the same disk boots as fast as the first time.
        await powerOff()
        deadline = try await powerOnAgain(cause: "reboot", deadline: deadline)
        let after = try await bootID(deadline: deadline)
        guard after != before else { throw RehearsalError.scenario("the guest did not reboot: its boot id is still \(before)") }
        return (before, after)
    }

    /// Cuts the power with no warning to the guest (as a power failure
    /// would), starts it again from the same disk and waits for its shell.
    /// Returns the boot ids before and after.
    public func powerCycle(deadline given: Deadline) async throws -> (before: String, after: String) {
        let before = try await bootID(deadline: given)
        await powerOff()
        let deadline = try await powerOnAgain(cause: "power cut", deadline: given)
        let after = try await bootID(deadline: deadline)
        return (before, after)
    }

    /// Powers the guest off cleanly (it runs `poweroff`) and waits until it
    /// has stopped; cuts the power if it hasn't within two minutes.
    public func shutDown(deadline: Deadline) async throws {
        let count = io.stopCount
        io.expectStop(true)
        defer { io.expectStop(false) }
        try await shell.launch("poweroff", deadline: deadline)
        let limit = Deadline.after(seconds: 120).earlier(deadline)
        do {
            _ = try await io.wait(until: limit, what: "waiting for the guest to power off") { view in view.stops > count ? true : nil }
        } catch RehearsalError.Code.timeout {}
        await powerOff()
    }

    /// Powers off cleanly and boots `next` from the same disk (the way a host
    /// boots into a new generation, or swaps to the other image of an A/B pair).
    public func boot(_ next: Generation, deadline: Deadline) async throws {
        if files.disk == nil, next.disk != nil || next.boot == .firmware {
            throw RehearsalError.scenario("generation \(next.name) needs a disk and this machine has none")
        }
        try await shutDown(deadline: deadline)
        previousGeneration = generation
        generation = next
        _ = try await powerOnAgain(cause: "boot \(next.name)", deadline: deadline)
    }

    /// Waits until the unsearched console text matches `pattern`; the text up
    /// to the matching line is then consumed.
    public func waitForConsole(_ pattern: ConsolePattern, deadline: Deadline) async throws -> String {
        try await io.wait(until: deadline, what: "waiting for /\(pattern.source)/ on the console") { view in
            let text = view.log.unsearchedText
            guard let r = pattern.firstMatch(in: text) else { return nil }
            let linesBefore = text[..<r.upperBound].filter { $0 == "\n" }.count
            view.log.searchFrom = min(view.log.searchFrom + linesBefore + 1, view.log.lines.count)
            return String(text[r])
        }
    }

    /// For a person at a terminal (`rehearse shell`): every byte the first
    /// serial console (`ttyS0`, the root shell for people) prints from now
    /// on goes to `output`; nil detaches. The transcript is kept as always.
    public nonisolated func mirrorConsole(to output: (@Sendable ([UInt8]) -> Void)?) {
        io.mirrorSerial(to: output)
    }

    /// Types `bytes` on the first serial console, as keys pressed there.
    public func typeOnConsole(_ bytes: [UInt8], deadline: Deadline) async throws {
        let power = self.power
        try await sendAll(bytes, to: { power.serial }, device: "the serial console", deadline: deadline)
    }

    /// Powers the machine off hard, releases its consoles and removes every
    /// file it made (overlays, checkpoints, the payload disk). Idempotent.
    public func destroy() async {
        guard !destroyed else { return }
        destroyed = true
        await powerOff()
        io.closeTranscripts()
        files.remove()
        for c in checkpoints { c.memory.map { try? FileManager.default.removeItem(at: $0.file) } }
        warm = .none
        Interruption.shared.removeEmergencyHook(hook)
    }
}

/// One boot of a machine: what it booted and why.
public struct BootRecord: Sendable, Codable {
    public var generation: String
    public var digest: String
    /// `uname -r` in the booted guest.
    public var kernelRelease: String?
    /// power on, reboot, power cut, boot NAME, rollback …
    public var cause: String
    /// Seconds from the start of waiting to the shell (and payload) being ready.
    public var secondsToShell: Double
    /// When the waiting began.
    public var started: Date? = nil
    /// The machine's name in a scenario with several (nil: its only one).
    public var machine: String? = nil
}
