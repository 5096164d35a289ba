import Foundation

/// SIGINT and SIGTERM, turned into an error at the next wait.
///
/// Waits check `Interruption.isRequested` and are woken through the
/// closures registered here, so a signal ends a step at once; the runner
/// then destroys its machines as on any other failure. A second signal while
/// cleanup is still under way runs the emergency hooks (destroy every live
/// domain) and exits.
///
/// While a foreground child runs (the host command a gate guards, in the
/// terminal's process group) none of that happens: the child gets ^C from the
/// terminal itself and decides; a SIGTERM sent to the harness alone is passed
/// on; the harness waits for the child and reports its status.
public final class Interruption: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `lock`.
    public static let shared = Interruption()

    private let lock = NSLock()
    private var signalName: String?
    private var wakers: [UUID: @Sendable () -> Void] = [:]
    private var emergencyHooks: [UUID: @Sendable () -> Void] = [:]
    private var sources: [DispatchSourceSignal] = []
    private var foreground: Foreground?

    /// The child in the terminal's foreground, from before it is spawned until it has ended.
    private struct Foreground {
        var pid: pid_t?
        /// Signals to forward that arrived before the pid was known.
        var pending: [Int32] = []
    }

    /// What a signal means to the harness at the moment it arrives.
    enum Response: Equatable {
        /// The first one: end the rehearsal at the next wait.
        case interrupt
        /// A second one while cleanup is under way: destroy every domain, exit(130).
        case emergencyExit
        /// A foreground child runs and did not get this one: pass it on.
        case forward(Int32)
        /// A foreground child runs and got this one from the terminal too.
        case leaveToChild
    }

    /// The decision `deliver` acts on, kept pure so that it can be tested
    /// without exiting the test process.
    static func response(to name: String, alreadyRequested: Bool, foregroundChild: Bool) -> Response {
        if foregroundChild {
            // ^C and a terminal hangup go to the whole foreground group; a SIGTERM
            // is usually aimed at rehearse's pid (kill, a service manager).
            return name == "SIGTERM" ? .forward(SIGTERM) : .leaveToChild
        }
        return alreadyRequested ? .emergencyExit : .interrupt
    }

    /// The signal that was received, if any.
    public var requested: String? { lock.withLock { signalName } }
    public var isRequested: Bool { requested != nil }

    /// Installs the handlers (once per process).
    public func install() {
        lock.lock(); defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for (sig, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { [unowned self] in self.deliver(name) }
            s.resume()
            sources.append(s)
        }
    }

    /// For tests: behave as if `name` had been received.
    public func deliver(_ name: String) {
        lock.lock()
        let response = Self.response(to: name, alreadyRequested: signalName != nil, foregroundChild: foreground != nil)
        switch response {
        case .leaveToChild:
            lock.unlock()
            return
        case .forward(let sig):
            // Under the lock: the pid cannot be reaped (and reused) meanwhile.
            if let pid = foreground?.pid { kill(pid, sig) } else { foreground?.pending.append(sig) }
            lock.unlock()
            return
        case .interrupt:
            signalName = name
        case .emergencyExit:
            break
        }
        let wake = Array(wakers.values)
        let hooks = Array(emergencyHooks.values)
        lock.unlock()
        for w in wake { w() }
        if response == .emergencyExit {
            for h in hooks { h() }
            exit(130)
        }
    }

    /// Calls `wake` on every signal (a waiter looks at `requested` again).
    public func onSignal(_ id: UUID, _ wake: @escaping @Sendable () -> Void) { lock.withLock { wakers[id] = wake } }
    public func removeOnSignal(_ id: UUID) { _ = lock.withLock { wakers.removeValue(forKey: id) } }

    /// Runs `body`, which spawns a child in the terminal's foreground group,
    /// hands its pid to `started` and returns once the child has ended but
    /// before reaping it. Meanwhile signals never interrupt or exit the harness.
    public func whileForegroundChildRuns<T>(_ body: (_ started: (pid_t) -> Void) throws -> T) rethrows -> T {
        lock.withLock { foreground = Foreground() }
        defer { lock.withLock { foreground = nil } }
        return try body { pid in
            lock.withLock {
                foreground?.pid = pid
                for sig in foreground?.pending ?? [] { kill(pid, sig) }
                foreground?.pending = []
            }
        }
    }

    /// For tests: forget a signal delivered by `deliver`.
    func reset() { lock.withLock { signalName = nil } }

    /// A last-resort action run on a second signal (destroy a domain).
    public func addEmergencyHook(_ hook: @escaping @Sendable () -> Void) -> UUID {
        let id = UUID()
        lock.withLock { emergencyHooks[id] = hook }
        return id
    }
    public func removeEmergencyHook(_ id: UUID) { _ = lock.withLock { emergencyHooks.removeValue(forKey: id) } }

    /// Runs every emergency hook now (a process about to exit without
    /// awaiting its machines' cleanup: cut their power).
    public func runEmergencyHooks() {
        for h in lock.withLock({ Array(emergencyHooks.values) }) { h() }
    }
}
