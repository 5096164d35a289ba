import Foundation

/// SIGINT and SIGTERM, turned into an error at the next wait.
///
/// Waits check `Interruption.isRequested` and are woken through the
/// closures registered here, so a signal ends a step at once; the runner
/// then destroys its machines as on any other failure. A second signal while
/// cleanup is still under way runs the emergency hooks (destroy every live
/// domain) and exits.
public final class Interruption: @unchecked Sendable {
    // @unchecked: all mutable state is guarded by `lock`.
    public static let shared = Interruption()

    private let lock = NSLock()
    private var signalName: String?
    private var wakers: [UUID: @Sendable () -> Void] = [:]
    private var emergencyHooks: [UUID: @Sendable () -> Void] = [:]
    private var sources: [DispatchSourceSignal] = []

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
        let second = signalName != nil
        if !second { signalName = name }
        let wake = Array(wakers.values)
        let hooks = Array(emergencyHooks.values)
        lock.unlock()
        for w in wake { w() }
        if second {
            for h in hooks { h() }
            exit(130)
        }
    }

    /// Calls `wake` on every signal (a waiter looks at `requested` again).
    public func onSignal(_ id: UUID, _ wake: @escaping @Sendable () -> Void) { lock.withLock { wakers[id] = wake } }
    public func removeOnSignal(_ id: UUID) { _ = lock.withLock { wakers.removeValue(forKey: id) } }

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
