import Foundation

/// Runs blocking work (a libvirt call that waits for QEMU, `qemu-img`, an
/// image build) on a thread of its own and awaits it.
///
/// The cooperative pool has one thread per core (two here): a libvirt
/// create or destroy that blocks one of them for a second would stall every
/// other machine's steps. A thread per call is cheap next to what it waits for.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, Error>) in
        let thread = Thread { c.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// `offload` for work that cannot fail.
func offload<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
        let thread = Thread { c.resume(returning: body()) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
