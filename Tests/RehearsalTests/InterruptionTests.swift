import Foundation
import Testing
@testable import Rehearsal

/// Signals while the gate's COMMAND runs must neither exit the harness nor
/// mark the rehearsal interrupted. Serialized: `Interruption.shared` is process-wide.
@Suite(.serialized) struct InterruptionTests {
    @Test func aForegroundChildKeepsSignalsFromEndingTheHarness() {
        for name in ["SIGINT", "SIGHUP"] {
            for requested in [false, true] {
                #expect(Interruption.response(to: name, alreadyRequested: requested, foregroundChild: true) == .leaveToChild)
            }
        }
        #expect(Interruption.response(to: "SIGTERM", alreadyRequested: false, foregroundChild: true) == .forward(SIGTERM))
        #expect(Interruption.response(to: "SIGTERM", alreadyRequested: true, foregroundChild: true) == .forward(SIGTERM))
        // Without one, as before: the first interrupts, a second exits.
        #expect(Interruption.response(to: "SIGINT", alreadyRequested: false, foregroundChild: false) == .interrupt)
        #expect(Interruption.response(to: "SIGINT", alreadyRequested: true, foregroundChild: false) == .emergencyExit)
    }

    @Test func twoInterruptsWhileCommandRunsLeaveItsStatusAndTheHarnessAlive() throws {
        defer { Interruption.shared.reset() }
        let status = try whileRunning(waitForGo: true) {
            Interruption.shared.deliver("SIGINT")
            Interruption.shared.deliver("SIGINT")  // a second one used to exit(130) here
        }
        #expect(status == 7)
        #expect(Interruption.shared.requested == nil)
    }

    @Test func aTerminateSentToTheHarnessIsForwardedToCommand() throws {
        defer { Interruption.shared.reset() }
        let status = try whileRunning(waitForGo: false) { Interruption.shared.deliver("SIGTERM") }
        #expect(status == 128 + SIGTERM)
        #expect(Interruption.shared.requested == nil)
    }

    /// Runs through HostProgram a shell that says it started, then exits 7 once
    /// `go` exists; `deliver` runs on another thread once the shell has started.
    /// No sleeps to get right: each side waits for a file the other writes.
    private func whileRunning(waitForGo: Bool, _ deliver: @escaping @Sendable () -> Void) throws -> Int32 {
        let dir = try ChildProcessFixture.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let started = dir.appendingPathComponent("started").path, go = dir.appendingPathComponent("go").path
        // Bounded, so that a signal that never arrives fails the test instead of hanging it.
        let script = "touch \(started); n=0; while [ ! -e \(go) ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done; exit 7"
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            // Polls for the file with a deadline (on a thread of its own, off the
            // cooperative pool), so a shell that never starts cannot hang the test.
            let deadline = Deadline.after(seconds: 60)
            while !FileManager.default.fileExists(atPath: started), !deadline.hasPassed { usleep(10_000) }
            deliver()
            if waitForGo { FileManager.default.createFile(atPath: go, contents: nil) }
            done.signal()
        }
        let status = try HostProgram.run(["sh", "-c", script])
        done.wait()
        return status
    }
}
