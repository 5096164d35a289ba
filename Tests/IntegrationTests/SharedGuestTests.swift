import Foundation
import Testing
@testable import Rehearsal

/// Steps and the console protocol on one real tiny guest, booted through
/// libvirt under TCG and shared by these tests (they run one at a time).
@Suite(.serialized) struct SharedGuestTests {
    @Test func passingStepsPass() async throws {
        for yaml in [
            "  - succeed: uname -r\n",
            "  - fail: test -e /nope\n",
            "  - run: cat /etc/os-release\n    expect: {exit: 0, stdout_contains: 'ID=rehearse-tiny', stdout_matches: '^VERSION_ID=[0-9]+$'}\n",
            "  - run: printf 'exact text\\n'\n    expect: {stdout_equals: \"exact text\\n\"}\n",
            "  - run: echo out; echo err >&2; exit 7\n    expect: {exit: 7, stdout_equals: \"out\\n\", stderr_contains: err}\n",
        ] {
            let r = try await TestGuest.step(yaml)
            #expect(r.outcome == .passed, "\(yaml): \(r.message ?? "")")
        }
    }

    @Test func wrongExitStatusFails() async throws {
        let r = try await TestGuest.step("  - succeed: exit 3\n")
        #expect(r.outcome == .failed)
        #expect(r.exitStatus == 3)
        #expect(r.message == "exit status 3, expected 0")
    }

    @Test func outputMismatchFailsAndSaysWhat() async throws {
        let r = try await TestGuest.step("  - run: echo hello\n    expect: {stdout_contains: goodbye, exit: 0}\n")
        #expect(r.outcome == .failed)
        #expect(r.message == "stdout does not contain \"goodbye\"")
        #expect(r.stdout == "hello\n")
    }

    @Test func waitThatNeverSucceedsTimesOut() async throws {
        let r = try await TestGuest.step("  - wait_until_succeeds: test -e /never\n    timeout: 3\n")
        #expect(r.outcome == .failed)
        #expect(r.message?.hasPrefix("timed out after") == true, "\(r.message ?? "")")
        #expect(r.message?.hasSuffix("(step timeout 3 s)") == true, "\(r.message ?? "")")
        #expect((r.attempts ?? 0) > 1)
        // A timeout quotes the console's last lines.
        #expect(r.console?.isEmpty == false)
    }

    @Test func waitUntilSucceedsRetriesUntilTrue() async throws {
        _ = try await TestGuest.step("  - succeed: rm -f /tmp/later; (sleep 1; touch /tmp/later) &\n")
        let r = try await TestGuest.step("  - wait_until_succeeds: test -e /tmp/later\n    timeout: 30\n")
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect((r.attempts ?? 0) > 1)
    }

    @Test func consoleWaitSeesKernelMessages() async throws {
        let tag = "rehearse-console-\(UInt32.random(in: 0...UInt32.max))"
        _ = try await TestGuest.step("  - succeed: echo '<2>\(tag)' > /dev/kmsg\n")
        let r = try await TestGuest.step("  - wait_for_console: '\(tag)'\n    timeout: 20\n")
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        let miss = try await TestGuest.step("  - wait_for_console: 'never-printed-\(tag)'\n    timeout: 1\n")
        #expect(miss.outcome == .failed)
        #expect(miss.message?.contains("timed out waiting for /never-printed-") == true)
    }

    @Test func aRebootThatNeverHappensFailsAtItsDeadline() async throws {
        let r = try await TestGuest.step("  - reboot: \"true\"\n    timeout: 3\n")
        #expect(r.outcome == .failed)
        #expect(r.message?.hasPrefix("timed out waiting for the guest to reboot") == true, "\(r.message ?? "")")
        #expect(r.console?.isEmpty == false)
        let m = try await TestGuest.machine()
        #expect(try await m.run("echo fine", deadline: .after(seconds: 10)).stdoutText == "fine\n")
    }

    @Test func waitForOpenPortSeesAListener() async throws {
        _ = try await TestGuest.step("  - succeed: (sleep 1; nc -l -p 7777 >/dev/null) >/dev/null 2>&1 &\n")
        let r = try await TestGuest.step("  - wait_for_open_port: 7777\n    timeout: 30\n")
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect((r.attempts ?? 0) > 1)
        let none = try await TestGuest.step("  - wait_for_open_port: 7778\n    timeout: 2\n")
        #expect(none.outcome == .failed)
        #expect(none.message?.contains("nothing listens on TCP port 7778") == true, "\(none.message ?? "")")
    }

    @Test func waitForUnitWithoutSystemdSaysSo() async throws {
        let r = try await TestGuest.step("  - wait_for_unit: sshd\n    timeout: 10\n")
        #expect(r.outcome == .failed)
        #expect(r.message == "cannot query sshd.service: no systemctl in the guest", "\(r.message ?? "")")
    }

    @Test func binaryOutputArrivesByteForByte() async throws {
        let m = try await TestGuest.machine()
        // Every byte value, made by the guest's own printf from octal escapes.
        let all = (0...255).map { String(format: "\\\\%03o", $0) }.joined()
        let r = try await m.run("printf \"\(all)\"", deadline: .after(seconds: 30))
        #expect(r.status == 0)
        #expect(r.stdout == (0...255).map { UInt8($0) })
    }

    @Test func markerLookalikesAndPromptsAreJustOutput() async throws {
        let m = try await TestGuest.machine()
        let r = try await m.run("printf '\\001123B\\n/ # \\001999E0\\nend'", deadline: .after(seconds: 30))
        #expect(r.stdout == Array("\u{01}123B\n/ # \u{01}999E0\nend".utf8))
        #expect(r.status == 0)
    }

    @Test func largeOutputAndVeryLongLines() async throws {
        let m = try await TestGuest.machine()
        let r = try await m.run("head -c 400000 /dev/zero | tr '\\0' 'x'", deadline: .after(seconds: 60))
        #expect(r.stdout.count == 400_000)
        #expect(r.stdout.allSatisfy { $0 == UInt8(ascii: "x") })
        let next = try await m.run("echo still here", deadline: .after(seconds: 10))
        #expect(next.stdoutText == "still here\n")
    }

    @Test func kernelMessagesDuringACommandDoNotCorruptIt() async throws {
        let m = try await TestGuest.machine()
        let r = try await m.run("for i in 1 2 3; do echo \"<2>noise $i\" > /dev/kmsg; echo line $i; done", deadline: .after(seconds: 30))
        #expect(r.stdoutText == "line 1\nline 2\nline 3\n")
        #expect(m.io.consoleLines.contains { $0.contains("noise 3") })
    }

    @Test func timedOutCommandIsStoppedAndTheShellStaysUsable() async throws {
        let r = try await TestGuest.step("  - succeed: sleep 600\n    timeout: 2\n")
        #expect(r.outcome == .failed)
        #expect(r.message?.contains("timed out running `sleep 600`") == true, "\(r.message ?? "")")
        let m = try await TestGuest.machine()
        let after = try await m.run("echo alive", deadline: .after(seconds: 10))
        #expect(after.stdoutText == "alive\n")
    }

    @Test func shellStateDoesNotLeakBetweenCommands() async throws {
        let m = try await TestGuest.machine()
        _ = try await m.run("cd /proc; X=1; exit 4", deadline: .after(seconds: 10))
        let r = try await m.run("echo \"$PWD ${X:-unset}\"", deadline: .after(seconds: 10))
        #expect(r.stdoutText == "/ unset\n")
    }
}
