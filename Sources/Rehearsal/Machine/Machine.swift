import Foundation
import Libvirt

/// One guest: its disk overlay, its libvirt domain while powered on, its
/// serial console and command channel, and everything they delivered.
///
/// The machine owns its domain and its overlay: `destroy()` is its one close,
/// it is called on every path out of a run (pass, failure, timeout, signal),
/// and a second SIGINT during a run triggers it from the emergency hook as
/// well. `powerCycle` cuts the power and starts a new domain on the same disk.
public final class Machine: @unchecked Sendable {
    // @unchecked: the current power-on and `destroyed` are guarded by `lock`;
    // everything else is immutable after init.
    public let name: String
    public let io: MachineIO
    public private(set) var shell: ShellSession!
    public let xml: String
    /// Seconds from `createDomain` to the shell answering (set by `waitReady`).
    public private(set) var readySeconds: Double?
    public let started: Stopwatch

    private let hypervisor: Hypervisor
    private let lock = NSLock()
    private var power: PowerOn?
    private var destroyed = false
    /// The copy-on-write disk this machine writes to; removed by `destroy()`.
    private let overlay: URL?
    private var hook: UUID?

    /// One boot's libvirt objects: the domain and what listens to it.
    private struct PowerOn {
        let domain: Domain
        let serial: ConsoleStream
        let channel: ConsoleStream
        let watch: LifecycleWatch
    }

    /// Starts a machine from `image` and attaches to its consoles.
    /// Transcripts go into `directory` (`console.log`, `channel.log`).
    public init(name: String, image: BootImage, spec: MachineSpec, hypervisor: Hypervisor,
                runID: String, scenario: String, allowConsole: [ConsolePattern], directory: URL) throws {
        // The base disk is never opened for writing: the guest gets an overlay.
        var overlay: URL?
        if let base = image.disk {
            let o = directory.appendingPathComponent("disk-overlay.qcow2")
            do {
                try HostCommand.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", o.path])
            } catch {
                throw MachineError.infrastructure("creating the disk overlay failed: \(error)")
            }
            overlay = o
        }
        var domainXML = DomainXML(name: name, accelerator: hypervisor.accelerator, memoryMiB: spec.memoryMiB, cpus: spec.cpus,
                                  kernel: image.kernel, initrd: image.initrd, cmdline: image.cmdline,
                                  runID: runID, scenario: scenario)
        domainXML.disk = overlay?.path
        let xml = domainXML.render()
        try? xml.write(to: directory.appendingPathComponent("domain.xml"), atomically: true, encoding: .utf8)
        let started = Stopwatch()
        let log = ConsoleLog(started: started, transcript: directory.appendingPathComponent("console.log"), allowed: allowConsole)
        self.name = name
        self.xml = xml
        self.started = started
        self.hypervisor = hypervisor
        self.overlay = overlay
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
            if let overlay { try? FileManager.default.removeItem(at: overlay) }
            throw error
        }
        self.hook = Interruption.shared.addEmergencyHook { [weak self] in self?.destroy() }
    }

    deinit { destroy() }

    /// Creates the domain and attaches to its consoles; on failure nothing runs.
    private func powerOn() throws {
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

    /// Cuts the power of the current boot; the disk overlay stays.
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

    /// The libvirt domain of the current boot, if powered on.
    public var domain: Domain? { lock.withLock { power?.domain } }

    /// Waits until the guest's shell answers on the command channel.
    public func waitReady(deadline: Deadline) throws {
        try shell.connect(deadline: deadline)
        readySeconds = started.seconds
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
        try shell.connect(deadline: deadline)
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
        io.restart()
        try powerOn()
        try shell.connect(deadline: deadline)
        let after = try bootID(deadline: deadline)
        return (before, after)
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

    /// Powers the machine off hard, releases its consoles and removes its
    /// disk overlay. Idempotent.
    public func destroy() {
        let first = lock.withLock { () -> Bool in let f = !destroyed; destroyed = true; return f }
        guard first else { return }
        powerOff()
        io.closeTranscripts()
        if let overlay { try? FileManager.default.removeItem(at: overlay) }
        if let hook { Interruption.shared.removeEmergencyHook(hook) }
    }
}
