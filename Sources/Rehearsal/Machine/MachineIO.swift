import Foundation
import Libvirt

/// Everything that arrives from one running machine, behind one condition:
/// the serial log, the command channel's bytes, and the first incident
/// (trouble on the console, the guest stopping, a stream failing).
///
/// libvirt's event thread feeds it; the runner waits on it with deadlines.
/// Every wait also ends at once on an incident or on SIGINT/SIGTERM, which is
/// what lets a panic fail the running step immediately.
///
/// `@unchecked Sendable`: every stored property is guarded by `condition`.
public final class MachineIO: @unchecked Sendable {
    public enum Incident: Sendable, Equatable {
        case trouble(ConsoleTrouble)
        case stopped(LifecycleEvent)
        case streamClosed(device: String, error: String?)
    }

    private let condition = NSCondition()
    private var log: ConsoleLog
    private var channel: [UInt8] = []
    private var channelLog: FileHandle?
    private var incidents: [Incident] = []
    /// Set once we destroy the machine ourselves: stops are then expected.
    private var stopping = false
    /// Set while a `reboot` step runs: a reboot is then expected, not trouble.
    private var expectingReboot = false
    private var reboots = 0
    /// Set while the harness powers the guest off cleanly: the guest stopping is then expected.
    private var expectingStop = false
    private var stops = 0

    init(log: ConsoleLog, channelTranscript: URL?) {
        self.log = log
        if let channelTranscript {
            _ = FileManager.default.createFile(atPath: channelTranscript.path, contents: nil)
            channelLog = FileHandle(forWritingAtPath: channelTranscript.path)
        }
        Interruption.shared.register(condition)
    }

    deinit { Interruption.shared.unregister(condition) }

    // MARK: Feeding (libvirt's event thread)

    func serialEvent(_ e: ConsoleStream.Event) {
        condition.lock(); defer { condition.broadcast(); condition.unlock() }
        switch e {
        case .data(let bytes):
            for t in log.append(bytes) { incidents.append(.trouble(t)) }
        case .closed(let err):
            log.flush()
            if !stopping && !expectingStop { incidents.append(.streamClosed(device: "serial console", error: err?.message)) }
        }
    }

    func channelEvent(_ e: ConsoleStream.Event) {
        condition.lock(); defer { condition.broadcast(); condition.unlock() }
        switch e {
        case .data(let bytes):
            channel += bytes
            channelLog?.write(Data(bytes))
        case .closed(let err):
            if !stopping && !expectingStop { incidents.append(.streamClosed(device: "command channel", error: err?.message)) }
        }
    }

    func lifecycle(_ e: LifecycleEvent) {
        if e == .rebooted {
            condition.lock(); defer { condition.broadcast(); condition.unlock() }
            reboots += 1
            if !expectingReboot && !stopping { incidents.append(.stopped(.rebooted)) }
            return
        }
        guard e.isStop else { return }
        condition.lock(); defer { condition.broadcast(); condition.unlock() }
        stops += 1
        if !stopping && !expectingStop { incidents.append(.stopped(e)) }
    }

    /// How many times the guest has reset itself so far.
    public var rebootCount: Int { condition.withLock { reboots } }
    public var stopCount: Int { condition.withLock { stops } }

    func expectReboot(_ expected: Bool) {
        condition.withLock { expectingReboot = expected }
    }

    func expectStop(_ expected: Bool) {
        condition.withLock { expectingStop = expected }
    }

    /// A new boot of the same machine begins (after `markStopping`): what
    /// the old boot's streams and events reported no longer counts.
    func restart() {
        condition.withLock {
            stopping = false
            expectingStop = false
            incidents.removeAll()
            channel.removeAll()
        }
    }

    func markStopping() {
        condition.lock(); stopping = true; condition.broadcast(); condition.unlock()
    }

    // MARK: Waiting (the runner's thread)

    /// What `wait` hands its body: the state to inspect and consume.
    public struct View {
        public var channel: [UInt8]
        public var log: ConsoleLog
        /// Reboots and stop events seen so far (read only).
        public let reboots: Int
        public let stops: Int
    }

    /// Calls `body` now and after every change until it returns a value, the
    /// deadline passes, an incident happens or a signal arrives.
    /// `body` may consume channel bytes or advance the log's search point.
    public func wait<T>(until deadline: Deadline, what: String, _ body: (inout View) throws -> T?) throws -> T {
        condition.lock(); defer { condition.unlock() }
        while true {
            var view = View(channel: channel, log: log, reboots: reboots, stops: stops)
            let result = try body(&view)
            channel = view.channel
            log.searchFrom = view.log.searchFrom
            if let result { return result }
            if !incidents.isEmpty { throw describe(mostTelling()) }
            if let sig = Interruption.shared.requested { throw MachineError.interrupted("interrupted by \(sig) while \(what)") }
            if deadline.hasPassed { throw MachineError.timeout("timed out \(what)") }
            _ = condition.wait(until: deadline.date)
        }
    }

    /// The incident that best explains what happened. A console stream
    /// closes because QEMU exited; the lifecycle event that says why (guest
    /// power-off, crash, QEMU failure) may arrive a moment later, so give it
    /// up to three seconds. Called with `condition` held.
    private func mostTelling() -> Incident {
        func rank(_ i: Incident) -> Int {
            switch i { case .trouble: return 0; case .stopped: return 1; case .streamClosed: return 2 }
        }
        if incidents.allSatisfy({ rank($0) == 2 }) {
            let deadline = Deadline.after(seconds: 3)
            while incidents.allSatisfy({ rank($0) == 2 }), !deadline.hasPassed {
                _ = condition.wait(until: deadline.date)
            }
        }
        return incidents.min { rank($0) < rank($1) }!
    }

    /// Waits up to `seconds` for more console lines after trouble, so a
    /// failure can quote the whole panic or oops rather than its first line.
    public func settle(seconds: Double) {
        let deadline = Deadline.after(seconds: seconds)
        condition.lock(); defer { condition.unlock() }
        var count = log.lines.count
        while !deadline.hasPassed {
            _ = condition.wait(until: Deadline.after(seconds: min(0.2, deadline.remaining)).date)
            if log.lines.count == count, incidents.contains(where: { if case .stopped = $0 { return true }; return false }) { break }
            count = log.lines.count
        }
    }

    public var firstIncident: Incident? { condition.withLock { incidents.first } }
    public func consoleTail(_ n: Int) -> [String] { condition.withLock { log.tail(n) } }
    public var consoleLines: [String] { condition.withLock { log.lines } }

    /// Lines of the console from the one that tripped `trouble` on (at most `n`).
    public func linesAround(_ trouble: ConsoleTrouble, _ n: Int) -> [String] {
        condition.withLock {
            guard let i = log.lines.lastIndex(of: trouble.line) else { return [trouble.line] }
            return Array(log.lines[i..<min(log.lines.count, i + n)])
        }
    }

    func describe(_ incident: Incident) -> MachineError {
        switch incident {
        case .trouble(let t):
            return .scenario("\(t.kind) on the console: \(t.line.trimmingCharacters(in: .whitespaces))")
        case .stopped(let e):
            switch e {
            case .shutDown: return .scenario("the guest powered off by itself")
            case .rebooted: return .scenario("the guest rebooted by itself")
            case .guestCrashed: return .scenario("the guest crashed")
            case .hypervisorFailed: return .infrastructure("QEMU failed and the machine stopped")
            case .destroyed: return .infrastructure("the machine was destroyed from outside rehearse")
            default: return .infrastructure("the machine stopped (\(e))")
            }
        case let .streamClosed(device, error):
            return .infrastructure("the \(device) closed unexpectedly\(error.map { ": \($0)" } ?? "")")
        }
    }

    func closeTranscripts() {
        condition.withLock {
            log.flush()
            try? channelLog?.close()
            channelLog = nil
        }
    }
}
