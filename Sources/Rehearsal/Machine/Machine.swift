import Foundation
import Libvirt

/// One guest: its disk, its libvirt domain while powered on, its serial
/// console and command channel, and everything they delivered.
///
/// The machine owns its domain and every file it made (disk overlays,
/// checkpoints, the payload disk): `destroy()` is its one close, it is called
/// on every path out of a run (pass, failure, timeout, signal), and a second
/// SIGINT during a run triggers it from the emergency hook as well. A machine
/// outlives its power-ons: `powerCycle`, `boot(_:)` and `rollback` stop the
/// domain and start a new one on the same disk chain.
public final class Machine: @unchecked Sendable {
    // @unchecked: the current power-on and `destroyed` are guarded by `lock`;
    // the generation, disk chain and checkpoints change only on the thread
    // that runs the steps (the runner's); the rest is immutable after init.
    public let name: String
    public let io: MachineIO
    public private(set) var shell: ShellSession!
    /// The domain XML of the current power-on.
    public private(set) var xml: String
    /// Seconds from `createDomain` to the shell answering (set by `waitReady`).
    public private(set) var readySeconds: Double?
    public let started: Stopwatch
    /// The generation booted now.
    public private(set) var generation: Generation
    /// Every boot so far, first one first.
    public private(set) var boots: [BootRecord] = []

    private let hypervisor: Hypervisor
    private let spec: MachineSpec
    private let runID: String
    private let scenario: String
    private let directory: URL
    private let lock = NSLock()
    private var power: PowerOn?
    private var destroyed = false
    private let disk: DiskChain?
    private let payload: Payload?
    private let seed: CloudInitSeed?
    private let ignition: URL?
    /// Saved states, latest last: the frozen disk file and the generation then booted.
    private var checkpoints: [(layer: URL, generation: Generation)] = []
    /// The generation booted before the last `boot(_:)`.
    private var previousGeneration: Generation?
    private var hook: UUID?
    /// How the next boot came about, for `boots`.
    private var nextBootCause = "power on"

    /// One boot's libvirt objects: the domain and what listens to it.
    private struct PowerOn {
        let domain: Domain
        let serial: ConsoleStream
        let channel: ConsoleStream
        let watch: LifecycleWatch
    }

    /// Starts a machine from `generation` and attaches to its consoles.
    /// Transcripts go into `directory` (`console.log`, `channel.log`); so do
    /// the disk overlays and the payload disk made from `payload`.
    public init(name: String, generation: Generation, spec: MachineSpec, hypervisor: Hypervisor,
                runID: String, scenario: String, allowConsole: [ConsolePattern], directory: URL, payload: URL? = nil) throws {
        // Every file made here goes if a later one can't be made.
        var made: [() -> Void] = []
        func undo() { made.reversed().forEach { $0() } }
        let disk: DiskChain?
        var ignition: URL?
        let payloadDisk: Payload?
        let seed: CloudInitSeed?
        do {
            // The base disk is never opened for writing: the guest gets an overlay.
            if let base = generation.disk {
                disk = try DiskChain(base: base, format: generation.diskFormat ?? "qcow2", directory: directory)
            } else if let label = generation.freshRootLabel {
                disk = try DiskChain(freshExt4: label, sizeMiB: NixOSSystem.rootDiskMiB, directory: directory)
            } else {
                disk = nil
            }
            made.append { disk?.remove() }
            // The guest reads its Ignition config from a copy that nothing else can change mid-run.
            if let source = spec.ignition {
                let copy = directory.appendingPathComponent("ignition.json")
                do {
                    try? FileManager.default.removeItem(at: copy)
                    try FileManager.default.copyItem(at: URL(fileURLWithPath: source), to: copy)
                } catch {
                    throw MachineError.infrastructure("copying the Ignition config failed: \(error)")
                }
                ignition = copy
            }
            payloadDisk = try payload.map { try Payload.make(from: $0, in: directory) }
            made.append { payloadDisk?.remove() }
            seed = try spec.cloudInit.map { try CloudInitSeed.make(from: $0, in: directory) }
            made.append { seed?.remove() }
        } catch {
            undo()
            throw error
        }
        let started = Stopwatch()
        let log = ConsoleLog(started: started, transcript: directory.appendingPathComponent("console.log"), allowed: allowConsole)
        self.name = name
        self.generation = generation
        self.spec = spec
        self.runID = runID
        self.scenario = scenario
        self.directory = directory
        self.xml = ""
        self.started = started
        self.hypervisor = hypervisor
        self.disk = disk
        self.payload = payloadDisk
        self.seed = seed
        self.ignition = ignition
        self.io = MachineIO(log: log, channelTranscript: directory.appendingPathComponent("channel.log"))
        self.shell = ShellSession(io: io) { [unowned self] bytes, giveUp in
            guard let channel = self.lock.withLock({ self.power?.channel }) else {
                throw MachineError.infrastructure("the machine is powered off")
            }
            return try channel.send(bytes, giveUp: giveUp)
        }
        do {
            try powerOn()
        } catch {
            undo()
            throw error
        }
        self.hook = Interruption.shared.addEmergencyHook { [weak self] in self?.destroy() }
    }

    deinit { destroy() }

    /// The domain XML for booting the current generation from the current disk.
    private func renderXML() -> String {
        let g = generation
        var x = DomainXML(name: name, accelerator: hypervisor.accelerator, memoryMiB: spec.memoryMiB, cpus: spec.cpus,
                          kernel: g.boot == .direct ? g.kernel : nil, initrd: g.boot == .direct ? g.initrd : nil,
                          cmdline: g.boot == .direct ? (g.cmdline ?? "console=ttyS0,115200") : nil,
                          runID: runID, scenario: scenario)
        x.disk = disk?.active.path
        // build-vm's root drive has serial `root` (/dev/disk/by-id/virtio-root).
        x.diskSerial = g.freshRootLabel == nil ? nil : "root"
        x.readOnlyDisks = readOnlyDisks
        x.share = g.nixStore.map { ($0, NixOSSystem.storeTag) }
        x.ignition = ignition?.path
        return x.render()
    }

    /// The payload and the cloud-init seed, in the order they are attached.
    private var readOnlyDisks: [ReadOnlyDisk] {
        (payload.map { [ReadOnlyDisk(file: $0.disk.path, serial: Payload.serial)] } ?? [])
            + (seed.map { [ReadOnlyDisk(file: $0.image.path, serial: CloudInitSeed.serial)] } ?? [])
    }

    /// Creates the domain and attaches to its consoles; on failure nothing runs.
    private func powerOn() throws {
        xml = renderXML()
        try? xml.write(to: directory.appendingPathComponent("domain.xml"), atomically: true, encoding: .utf8)
        let domain: Domain
        do {
            domain = try hypervisor.connection.createDomain(xml: xml)
        } catch let e as LibvirtError {
            throw MachineError.infrastructure("starting the machine failed: \(e.message)")
        }
        // From here on the domain exists: any failure must destroy it.
        do {
            let io = self.io
            let watch = try LifecycleWatch(domain: domain) { io.lifecycle($0) }
            let serial = try ConsoleStream(domain: domain, device: DomainXML.serialDevice) { io.serialEvent($0) }
            let channel = try ConsoleStream(domain: domain, device: DomainXML.channelDevice) { io.channelEvent($0) }
            lock.withLock { power = PowerOn(domain: domain, serial: serial, channel: channel, watch: watch) }
        } catch {
            io.markStopping()
            try? domain.destroy()
            throw MachineError.infrastructure("attaching to the machine's consoles failed: \(error)")
        }
    }

    /// Cuts the power of the current boot; the disk stays.
    private func powerOff() {
        guard let p = lock.withLock({ () -> PowerOn? in let p = power; power = nil; return p }) else { return }
        io.markStopping()
        p.watch.cancel()
        p.channel.close()
        p.serial.close()
        // libvirt can fail a destroy while QEMU is busy; a machine that is
        // still running after three tries is left for `rehearse clean`.
        for _ in 0..<3 {
            if (try? p.domain.destroy()) != nil, !p.domain.isActive { break }
            usleep(200_000)
        }
    }

    /// Starts a new power-on of the same machine (after `powerOff`) and waits for its shell.
    private func powerOnAgain(cause: String, deadline: Deadline) throws {
        io.restart()
        nextBootCause = cause
        try powerOn()
        try connected(deadline: deadline)
    }

    /// The libvirt domain of the current boot, if powered on.
    public var domain: Domain? { lock.withLock { power?.domain } }

    /// Waits until the guest's shell answers on the command channel.
    public func waitReady(deadline: Deadline) throws {
        try connected(deadline: deadline)
        readySeconds = started.seconds
    }

    /// After every boot: connect the shell, mount the payload, note the boot.
    private func connected(deadline: Deadline) throws {
        let clock = Stopwatch()
        if let login = spec.console { try shell.logIn(login, deadline: deadline) }
        try shell.connect(deadline: deadline)
        if payload != nil {
            let r = try run(Payload.mountCommand, deadline: deadline)
            guard r.status == 0 else {
                throw MachineError.scenario("mounting the payload at \(Payload.mountPoint) failed: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        let kernel = try? run("uname -r", deadline: deadline).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        boots.append(BootRecord(generation: generation.name, digest: generation.digest, kernelRelease: kernel,
                                cause: nextBootCause, secondsToShell: clock.seconds))
        nextBootCause = "reboot"
    }

    /// Runs a command in the guest.
    public func run(_ command: String, deadline: Deadline) throws -> CommandResult {
        try shell.run(command, deadline: deadline)
    }

    /// The guest kernel's boot id, which changes with every boot.
    public func bootID(deadline: Deadline) throws -> String {
        let r = try run("cat /proc/sys/kernel/random/boot_id", deadline: deadline)
        let id = r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        guard r.status == 0, !id.isEmpty else { throw MachineError.scenario("cannot read the guest's boot id: \(r.stderrText)") }
        return id
    }

    /// Has the guest reboot itself with `command`, waits for libvirt to see
    /// the reset and for the new boot's shell to answer, and checks that the
    /// boot id changed. Returns the boot ids before and after.
    public func reboot(command: String, deadline: Deadline) throws -> (before: String, after: String) {
        let before = try bootID(deadline: deadline)
        let count = io.rebootCount
        io.expectReboot(true)
        defer { io.expectReboot(false) }
        try shell.launch(command, deadline: deadline)
        _ = try io.wait(until: deadline, what: "waiting for the guest to reboot") { view in view.reboots > count ? true : nil }
        if generation.boot == .firmware {
            // Under TCG, every reset of a long-running QEMU makes the BIOS and
            // GRUB slower (their stores land on pages full of stale translated
            // code): 6 s, then 16 s, 34 s, and minutes after a long upgrade.
            // A fresh QEMU on the same disk boots as fast as the first time.
            powerOff()
            try powerOnAgain(cause: "reboot", deadline: deadline)
        } else {
            nextBootCause = "reboot"
            try connected(deadline: deadline)
        }
        let after = try bootID(deadline: deadline)
        guard after != before else { throw MachineError.scenario("the guest did not reboot: its boot id is still \(before)") }
        return (before, after)
    }

    /// Cuts the power with no warning to the guest (as a power failure
    /// would), starts it again from the same disk and waits for its shell.
    /// Returns the boot ids before and after.
    public func powerCycle(deadline: Deadline) throws -> (before: String, after: String) {
        let before = try bootID(deadline: deadline)
        powerOff()
        try powerOnAgain(cause: "power cut", deadline: deadline)
        let after = try bootID(deadline: deadline)
        return (before, after)
    }

    /// Powers the guest off cleanly (it runs `poweroff`) and waits until it
    /// has stopped; cuts the power if it hasn't within two minutes.
    public func shutDown(deadline: Deadline) throws {
        let count = io.stopCount
        io.expectStop(true)
        defer { io.expectStop(false) }
        try shell.launch("poweroff", deadline: deadline)
        let limit = Deadline.after(seconds: 120).earlier(deadline)
        do {
            _ = try io.wait(until: limit, what: "waiting for the guest to power off") { view in view.stops > count ? true : nil }
        } catch MachineError.timeout {}
        powerOff()
    }

    /// Powers off cleanly and boots `next` from the same disk (the way a host
    /// boots into a new generation, or swaps to the other image of an A/B pair).
    public func boot(_ next: Generation, deadline: Deadline) throws {
        if disk == nil, next.disk != nil || next.boot == .firmware {
            throw MachineError.scenario("generation \(next.name) needs a disk and this machine has none")
        }
        try shutDown(deadline: deadline)
        previousGeneration = generation
        generation = next
        try powerOnAgain(cause: "boot \(next.name)", deadline: deadline)
    }

    /// Keeps the disk state and the booted generation as they are now: the
    /// guest syncs, then a live disk-only snapshot freezes the current overlay
    /// and the guest writes to a new one (crash-consistent, like an LVM or
    /// btrfs snapshot taken on a running host). Returns the checkpoint's number.
    @discardableResult
    public func checkpoint(deadline: Deadline) throws -> Int {
        guard let disk else { throw MachineError.scenario("this machine has no disk to checkpoint") }
        guard let domain else { throw MachineError.infrastructure("the machine is powered off") }
        _ = try run("sync", deadline: deadline)
        let next = disk.nextFile()
        let snapshot = """
            <domainsnapshot><disks>\
            <disk name='vda' snapshot='external'><driver type='qcow2'/><source file='\(next.path)'/></disk>\
            \(readOnlyDisks.indices.map { "<disk name='\(DomainXML.readOnlyTarget($0))' snapshot='no'/>" }.joined())\
            </disks></domainsnapshot>
            """
        do {
            try domain.snapshotDisks(xml: snapshot)
        } catch let e as LibvirtError {
            try? FileManager.default.removeItem(at: next)
            throw MachineError.infrastructure("taking a checkpoint failed: \(e.message)")
        }
        disk.froze(next: next)
        checkpoints.append((disk.frozen.last!, generation))
        return checkpoints.count
    }

    /// Powers off and boots the latest checkpoint: its disk state and its
    /// generation. With no checkpoint, boots the generation that was booted
    /// before the last `boot(_:)`, on the disk as it is. Returns what it booted.
    @discardableResult
    public func rollback(deadline: Deadline) throws -> String {
        if let (layer, g) = checkpoints.last, let disk {
            powerOff()
            try disk.reset(to: layer)
            generation = g
            try powerOnAgain(cause: "rollback to checkpoint \(checkpoints.count)", deadline: deadline)
            return "checkpoint \(checkpoints.count) (\(g.name))"
        }
        guard let previous = previousGeneration else {
            throw MachineError.scenario("nothing to roll back to: no checkpoint and no earlier `boot:`")
        }
        try shutDown(deadline: deadline)
        previousGeneration = generation
        generation = previous
        try powerOnAgain(cause: "rollback to \(previous.name)", deadline: deadline)
        return previous.name
    }

    /// Waits until the unsearched console text matches `pattern`; the text up
    /// to the matching line is then consumed.
    public func waitForConsole(_ pattern: ConsolePattern, deadline: Deadline) throws -> String {
        try io.wait(until: deadline, what: "waiting for /\(pattern.source)/ on the console") { view in
            let text = view.log.unsearchedText
            guard let r = pattern.firstMatch(in: text) else { return nil }
            let linesBefore = text[..<r.upperBound].filter { $0 == "\n" }.count
            view.log.searchFrom = min(view.log.searchFrom + linesBefore + 1, view.log.lines.count)
            return String(text[r])
        }
    }

    /// Powers the machine off hard, releases its consoles and removes every
    /// file it made (overlays, checkpoints, the payload disk). Idempotent.
    public func destroy() {
        let first = lock.withLock { () -> Bool in let f = !destroyed; destroyed = true; return f }
        guard first else { return }
        powerOff()
        io.closeTranscripts()
        disk?.remove()
        payload?.remove()
        seed?.remove()
        if let hook { Interruption.shared.removeEmergencyHook(hook) }
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
}
