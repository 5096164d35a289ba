import Foundation

/// Ends a helper that outlives its time limit: SIGTERM, then SIGKILL if it is
/// still there `escalation` seconds later (a helper may ignore or trap SIGTERM).
final class Watchdog: @unchecked Sendable {
    // @unchecked: `ended` and `fired` are guarded by `lock`.
    private let lock = NSLock()
    private var ended = false
    private var fired = false
    private let child: Spawn
    private var pending: [DispatchWorkItem] = []

    init(child: Spawn, timeout: Double, escalation: Double) {
        self.child = child
        let term = DispatchWorkItem { [self] in send(SIGTERM, firing: true) }
        let kill = DispatchWorkItem { [self] in send(SIGKILL, firing: false) }
        pending = [term, kill]
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout), execute: term)
        DispatchQueue.global().asyncAfter(deadline: .now() + max(0, timeout) + max(0, escalation), execute: kill)
    }

    /// Whether the time limit passed before the child ended.
    var didFire: Bool { lock.withLock { fired } }

    /// The child has ended (not yet reaped): nothing more may be sent to its pid.
    func childEnded() {
        // Dropping the items also breaks their hold on self.
        let items = lock.withLock { ended = true; defer { pending = [] }; return pending }
        for item in items { item.cancel() }
    }

    private func send(_ sig: Int32, firing: Bool) {
        lock.withLock {
            guard !ended else { return }
            if firing { fired = true }
            child.signal(sig)
        }
    }
}
