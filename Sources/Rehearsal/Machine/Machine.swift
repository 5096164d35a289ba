import Foundation
import Libvirt

/// One running guest: its libvirt domain, its serial console and command
/// channel, and everything they delivered.
///
/// The machine owns its domain: `destroy()` is its one close, it is called on
/// every path out of a run (pass, failure, timeout, signal), and a second
/// SIGINT during a run triggers it from the emergency hook as well.
public final class Machine: @unchecked Sendable {
    // @unchecked: the stored references are immutable; `destroyed` is guarded by `lock`.
    public let name: String
    public let domain: Domain
    public let io: MachineIO
    public let shell: ShellSession
    public let xml: String
    /// Seconds from `createDomain` to the shell answering (set by `waitReady`).
    public private(set) var readySeconds: Double?
    public let started: Stopwatch

    private let serial: ConsoleStream
    private let channel: ConsoleStream
    private let watch: LifecycleWatch
    private let lock = NSLock()
    private var destroyed = false
    /// The copy-on-write disk this machine writes to; removed by `destroy()`.
    private let overlay: URL?
    private var hook: UUID?

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
        let io = MachineIO(log: log, channelTranscript: directory.appendingPathComponent("channel.log"))
        let domain: Domain
        do {
            domain = try hypervisor.connection.createDomain(xml: xml)
        } catch let e as LibvirtError {
            if let overlay { try? FileManager.default.removeItem(at: overlay) }
            throw MachineError.infrastructure("starting the machine failed: \(e.message)")
        }
        // From here on the domain exists: any failure must destroy it.
        do {
            let watch = try LifecycleWatch(domain: domain) { io.lifecycle($0) }
            let serial = try ConsoleStream(domain: domain, device: DomainXML.serialDevice) { io.serialEvent($0) }
            let channel = try ConsoleStream(domain: domain, device: DomainXML.channelDevice) { io.channelEvent($0) }
            self.watch = watch
            self.serial = serial
            self.channel = channel
        } catch {
            io.markStopping()
            try? domain.destroy()
            if let overlay { try? FileManager.default.removeItem(at: overlay) }
            throw MachineError.infrastructure("attaching to the machine's consoles failed: \(error)")
        }
        self.name = name
        self.overlay = overlay
        self.domain = domain
        self.io = io
        self.xml = xml
        self.started = started
        let channel = self.channel
        self.shell = ShellSession(io: io) { try channel.send($0, giveUp: $1) }
        self.hook = Interruption.shared.addEmergencyHook { [domain] in try? domain.destroy() }
    }

    deinit { destroy() }

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

    /// Powers the machine off hard and releases its consoles. Idempotent.
    public func destroy() {
        lock.lock()
        let first = !destroyed
        destroyed = true
        lock.unlock()
        guard first else { return }
        io.markStopping()
        watch.cancel()
        channel.close()
        serial.close()
        // libvirt can fail a destroy while QEMU is busy; a machine that is
        // still running after three tries is left for `rehearse clean`.
        for _ in 0..<3 {
            if (try? domain.destroy()) != nil, !domain.isActive { break }
            usleep(200_000)
        }
        io.closeTranscripts()
        if let overlay { try? FileManager.default.removeItem(at: overlay) }
        if let hook { Interruption.shared.removeEmergencyHook(hook) }
    }
}
