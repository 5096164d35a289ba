import Foundation
import Synchronization
@testable import Rehearsal

/// What must hold once every test has run: no base disk (or kernel, or
/// initrd) of a built generation and no saved state was written by the
/// suite. Each is read again in full and checked against the digest taken
/// when it was made (`rehearse generations --verify`, `rehearse snapshots
/// --verify`); a difference fails the test process, whatever the tests said.
/// Checked at exit, after the shared guest's power is cut.
enum AfterTheSuite {
    static func install(state: StateDirectory) {
        _ = hook
        self.state.withLock { $0 = state }
    }

    private static let state = Mutex<StateDirectory?>(nil)

    private static let hook: Void = { atexit { AfterTheSuite.check() } }()

    static func check() {
        guard let state = state.withLock({ $0 }) else { return }
        let generations = GenerationStore.all(state: state)
        let store = SavedStateStore(state: state)
        let states = store.list()
        let problems = GenerationStore.verify(generations).compactMap { $0 } + states.compactMap { store.verify($0.id) }
        guard problems.isEmpty else {
            FileHandle.standardError.write(Data(problems.map { "after the whole suite: \($0)\n" }.joined().utf8))
            _exit(1)
        }
        FileHandle.standardOutput.write(Data("after the whole suite: \(generations.count) generation(s) and \(states.count) saved state(s) are byte-identical to when they were made\n".utf8))
    }
}
