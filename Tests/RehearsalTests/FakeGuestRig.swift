import Foundation
@testable import Rehearsal

/// A `ShellSession` wired to a `FakeGuest`, each test with its own
/// `MachineIO` and no transcripts: nothing is shared between tests.
struct FakeGuestRig {
    let io: MachineIO
    let guest: FakeGuest
    let session: ShellSession

    init(_ options: FakeGuest.Options = .init(), handler: @escaping @Sendable (String) -> FakeGuest.Reply = { _ in .ok("") }) {
        io = MachineIO(log: ConsoleLog(started: Stopwatch(), transcript: nil, allowed: []), channelTranscript: nil)
        let guest = FakeGuest(io: io, options, handler: handler)
        self.guest = guest
        // The fake answers at once or never: a short grace only shortens the
        // wait for answers that will never come.
        session = ShellSession(io: io, interruptGrace: 0.5) { guest }
    }

    /// The `RehearsalError` that `body` throws, nil when it succeeds or throws another kind.
    static func failure(_ body: () async throws -> Void) async -> RehearsalError? {
        do { try await body(); return nil } catch let e as RehearsalError { return e } catch { return nil }
    }
}
