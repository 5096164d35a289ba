import Foundation
import Synchronization

/// At most N guests booting at once, whatever else runs.
///
/// A boot under TCG is CPU-bound (2.5–3 core-seconds for the tiny guest, far
/// more for Debian): ten guests booting on two cores do not finish sooner,
/// they all finish late, and late means past their deadlines. Steps of
/// guests already up run freely; only the stretch from power-on to a
/// shell that answers waits for a slot. Waiting counts against the
/// deadline of whoever waits, and ends at once on cancellation.
public final class BootSlots: Sendable {
    private struct State {
        var free: Int
        var waiters: [(id: UInt64, c: CheckedContinuation<Bool, Never>)] = []
        var next: UInt64 = 0
    }
    private let state: Mutex<State>
    public let count: Int

    public init(count: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.count = max(1, count)
        state = Mutex(State(free: max(1, count)))
    }

    /// Waits for a slot; every `acquire` that returns is paired with one `release`.
    public func acquire() async throws {
        let id = state.withLock { s -> UInt64? in
            if s.free > 0 { s.free -= 1; return nil }
            s.next &+= 1
            return s.next
        }
        guard let id else { return }
        let granted = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                let now = state.withLock { s -> Bool? in
                    if s.free > 0 { s.free -= 1; return true }
                    if Task.isCancelled { return false }
                    s.waiters.append((id, c))
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Bool, Never>? in
                guard let i = s.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return s.waiters.remove(at: i).c
            }
            c?.resume(returning: false)
        }
        if !granted { throw RehearsalError.interrupted("cancelled while waiting to boot") }
    }

    public func release() {
        let c = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            if s.waiters.isEmpty { s.free += 1; return nil }
            return s.waiters.removeFirst().c
        }
        c?.resume(returning: true)
    }
}
