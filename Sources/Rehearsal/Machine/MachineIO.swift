import Foundation
import Libvirt
import Synchronization

/// Everything that arrives from one running machine, behind one lock: the
/// serial log, the command channel's bytes, and the first incident (trouble
/// on the console, the guest stopping, a stream failing).
///
/// libvirt's event thread feeds it; steps `await` it with deadlines. No
/// thread is parked while a guest computes: a waiter is a continuation,
/// resumed by the next delivery, its deadline, a signal or the cancellation
/// of its task. Every wait also ends at once on an incident, which is what
/// lets a panic, a power-off or a reset fail the running step immediately.
public final class MachineIO: Sendable {
    public enum Incident: Sendable, Equatable {
        case trouble(ConsoleTrouble)
        case stopped(LifecycleEvent)
        case streamClosed(device: String, error: String?)
    }

    private struct State {
        var log: ConsoleLog
        var channel: [UInt8] = []
        var channelLog: FileHandle?
        var channelTrace: ChannelTrace?
        var incidents: [Incident] = []
        /// Set once we destroy the machine ourselves: stops are then expected.
        var stopping = false
        /// Set while a `reboot` step runs: a reboot is then expected, not trouble.
        var expectingReboot = false
        var reboots = 0
        /// Set while the harness powers the guest off cleanly: the guest stopping is then expected.
        var expectingStop = false
        var stops = 0
        /// Bumped by every delivery: a waiter that saw an older version looks again.
        var version: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters woken (by cancellation or a deadline) before they had suspended.
        var woken: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
    }

    private let state: Mutex<State>
    private let wakeToken: UUID
    /// A person's terminal attached to the serial console (`rehearse shell`):
    /// gets its bytes as they come, outside the state's lock.
    private let serialMirror = Mutex<(@Sendable ([UInt8]) -> Void)?>(nil)

    /// Hands every byte the serial console prints from now on to `output` (nil: stop).
    func mirrorSerial(to output: (@Sendable ([UInt8]) -> Void)?) { serialMirror.withLock { $0 = output } }

    init(log: ConsoleLog, channelTranscript: URL?, channelTrace: ChannelTrace? = nil) {
        var channelLog: FileHandle?
        if let channelTranscript {
            _ = FileManager.default.createFile(atPath: channelTranscript.path, contents: nil)
            channelLog = FileHandle(forWritingAtPath: channelTranscript.path)
        }
        state = Mutex(State(log: log, channelLog: channelLog, channelTrace: channelTrace))
        wakeToken = UUID()
        Interruption.shared.onSignal(wakeToken) { [weak self] in self?.wakeAll() }
    }

    deinit { Interruption.shared.removeOnSignal(wakeToken) }

    // MARK: Feeding (libvirt's event thread, or a test's fake guest)

    /// Applies `change` and wakes every waiter to look again.
    private func deliver(_ change: (inout State) -> Void) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            change(&s)
            s.version &+= 1
            let w = Array(s.waiters.values)
            s.waiters.removeAll()
            return w
        }
        for w in waiters { w.resume() }
    }

    func serialEvent(_ e: ConsoleStream.Event) {
        if case .data(let bytes) = e, let mirror = serialMirror.withLock({ $0 }) { mirror(bytes) }
        deliver { s in
            switch e {
            case .data(let bytes):
                for t in s.log.append(bytes) { s.incidents.append(.trouble(t)) }
            case .closed(let err):
                s.log.flush()
                if !s.stopping && !s.expectingStop { s.incidents.append(.streamClosed(device: "serial console", error: err?.message)) }
            }
        }
    }

    /// What the harness writes to the command channel, for the trace.
    func channelSent(_ bytes: [UInt8]) { state.withLock { $0.channelTrace?.record(.sent, bytes) } }

    func channelEvent(_ e: ConsoleStream.Event) {
        deliver { s in
            switch e {
            case .data(let bytes):
                s.channel += bytes
                s.channelLog?.write(Data(bytes))
                s.channelTrace?.record(.received, bytes)
            case .closed(let err):
                if !s.stopping && !s.expectingStop { s.incidents.append(.streamClosed(device: "command channel", error: err?.message)) }
            }
        }
    }

    func lifecycle(_ e: LifecycleEvent) {
        if e == .rebooted {
            deliver { s in
                s.reboots += 1
                if !s.expectingReboot && !s.stopping { s.incidents.append(.stopped(.rebooted)) }
            }
            return
        }
        guard e.isStop else { return }
        deliver { s in
            s.stops += 1
            if !s.stopping && !s.expectingStop { s.incidents.append(.stopped(e)) }
        }
    }

    /// How many times the guest has reset itself so far.
    public var rebootCount: Int { state.withLock { $0.reboots } }
    public var stopCount: Int { state.withLock { $0.stops } }

    func expectReboot(_ expected: Bool) { state.withLock { $0.expectingReboot = expected } }
    func expectStop(_ expected: Bool) { state.withLock { $0.expectingStop = expected } }

    /// A new boot of the same machine begins (after `markStopping`): what
    /// the old boot's streams and events reported no longer counts.
    func restart() {
        deliver { s in
            s.stopping = false
            s.expectingStop = false
            s.incidents.removeAll()
            s.channel.removeAll()
        }
    }

    func markStopping() { deliver { $0.stopping = true } }
    /// The stop that `markStopping` announced did not happen (a save that failed).
    func unmarkStopping() { deliver { $0.stopping = false } }

    // MARK: Waiting

    /// What `wait` hands its body: the state to inspect and consume.
    public struct View {
        public var channel: [UInt8]
        public var log: ConsoleLog
        /// Reboots and stop events seen so far (read only).
        public let reboots: Int
        public let stops: Int
    }

    private enum Look<T> {
        case done(T)
        case incident
        case pending(UInt64)
    }

    /// Calls `body` now and after every change until it returns a value, the
    /// deadline passes, an incident happens, a signal arrives or the task is
    /// cancelled. `body` may consume channel bytes or advance the log's search point.
    public func wait<T: Sendable>(until deadline: Deadline, what: String, _ body: (inout View) throws -> T?) async throws -> T {
        while true {
            let look: Look<T> = try state.withLock { s in
                var view = View(channel: s.channel, log: s.log, reboots: s.reboots, stops: s.stops)
                s.channel = []
                defer {
                    s.channel = view.channel
                    s.log.searchFrom = view.log.searchFrom
                }
                if let result = try body(&view) { return .done(result) }
                return s.incidents.isEmpty ? .pending(s.version) : .incident
            }
            switch look {
            case .done(let result):
                return result
            case .incident:
                throw describe(await mostTelling())
            case .pending(let version):
                if let sig = Interruption.shared.requested { throw RehearsalError.interrupted("interrupted by \(sig) while \(what)") }
                if Task.isCancelled { throw RehearsalError.interrupted("cancelled while \(what)") }
                if deadline.hasPassed { throw RehearsalError.timeout("timed out \(what)") }
                await changed(since: version, until: deadline)
            }
        }
    }

    /// Pauses until something is delivered after `version`, the deadline
    /// passes, a signal arrives or the task is cancelled.
    func changed(since version: UInt64, until deadline: Deadline) async {
        let id = state.withLock { s -> UInt64 in s.nextWaiter &+= 1; return s.nextWaiter }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s -> Bool in
                    if s.version != version || s.woken.remove(id) != nil { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume(); return }
                DispatchQueue.global().asyncAfter(deadline: DispatchTime(uptimeNanoseconds: deadline.uptimeNanoseconds)) { [weak self] in
                    self?.wake(id)
                }
            }
        } onCancel: {
            wake(id)
        }
        state.withLock { _ = $0.woken.remove(id) }
    }

    private func wake(_ id: UInt64) {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if let c = s.waiters.removeValue(forKey: id) { return c }
            s.woken.insert(id)
            return nil
        }
        c?.resume()
    }

    /// Wakes every waiter (a signal arrived: each looks at it).
    func wakeAll() { deliver { _ in } }

    /// Pauses for `seconds` unless an incident, a signal or cancellation
    /// comes first (between retries of a step).
    public func pause(seconds: Double) async throws {
        do {
            _ = try await wait(until: .after(seconds: seconds), what: "waiting to retry") { _ -> Bool? in nil }
        } catch RehearsalError.Code.timeout {}
    }

    /// The incident that best explains what happened. A console stream
    /// closes because QEMU exited; the lifecycle event that says why (guest
    /// power-off, crash, QEMU failure) may arrive a moment later, so give it
    /// up to three seconds.
    private func mostTelling() async -> Incident {
        func rank(_ i: Incident) -> Int {
            switch i { case .trouble: return 0; case .stopped: return 1; case .streamClosed: return 2 }
        }
        let deadline = Deadline.after(seconds: 3)
        while true {
            let (incidents, version) = state.withLock { ($0.incidents, $0.version) }
            if !incidents.allSatisfy({ rank($0) == 2 }) || deadline.hasPassed || Task.isCancelled {
                return incidents.min { rank($0) < rank($1) }!
            }
            await changed(since: version, until: deadline)
        }
    }

    /// Waits up to `seconds` for more console lines after trouble, so a
    /// failure can quote the whole panic or oops rather than its first line.
    public func settle(seconds: Double) async {
        let deadline = Deadline.after(seconds: seconds)
        var count = state.withLock { $0.log.lines.count }
        while !deadline.hasPassed, !Task.isCancelled {
            let version = state.withLock { $0.version }
            await changed(since: version, until: Deadline.after(seconds: min(0.2, deadline.remaining)))
            let (lines, stopped) = state.withLock { s in
                (s.log.lines.count, s.incidents.contains { if case .stopped = $0 { return true }; return false })
            }
            if lines == count, stopped { break }
            count = lines
        }
    }

    /// Whether the channel's unread bytes end at a shell's continuation prompt.
    var channelEndsAtContinuationPrompt: Bool { state.withLock { ShellProtocol.endsAtContinuationPrompt($0.channel) } }

    public var firstIncident: Incident? { state.withLock { $0.incidents.first } }
    public func consoleTail(_ n: Int) -> [String] { state.withLock { $0.log.tail(n) } }
    public var consoleLines: [String] { state.withLock { $0.log.lines } }

    /// A restored machine's console begins with the boot its saved state was
    /// made from, checked for trouble like any console output.
    func carryConsole(_ lines: [String]) {
        guard !lines.isEmpty else { return }
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        deliver { s in for t in s.log.append(bytes) { s.incidents.append(.trouble(t)) } }
    }

    /// Lines of the console from the one that tripped `trouble` on (at most `n`).
    public func linesAround(_ trouble: ConsoleTrouble, _ n: Int) -> [String] {
        state.withLock { s in
            guard let i = s.log.lines.lastIndex(of: trouble.line) else { return [trouble.line] }
            return Array(s.log.lines[i..<min(s.log.lines.count, i + n)])
        }
    }

    func describe(_ incident: Incident) -> RehearsalError {
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
        state.withLock { s in
            s.log.flush()
            try? s.channelLog?.close()
            s.channelLog = nil
            s.channelTrace?.close()
        }
    }
}
