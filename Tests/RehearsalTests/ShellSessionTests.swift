import Foundation
import Testing
@testable import Rehearsal

/// `ShellSession` against a scripted guest (`FakeGuest`): connecting, the
/// exact bytes of answers, timeouts and ^C, incidents and serialisation,
/// in milliseconds and with no VM.
@Suite struct ShellSessionTests {
    typealias Rig = FakeGuestRig
    /// For things that should happen at once: generous, so a slow CI host never flakes.
    static let soon = 10.0

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    // MARK: Connecting

    @Test func connectsToAReadyShell() async throws {
        let rig = Rig { .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let r = try await rig.session.run("uname -a", deadline: .after(seconds: Self.soon))
        #expect(r == CommandResult(stdout: bytes("ran uname -a\n"), stderr: [], status: 0))
        let rec = rig.guest.record
        #expect(rec.probes == 1)
        #expect(rec.bootstraps == 1)
        #expect(rec.commands == ["uname -a"])
        #expect(rec.strays.isEmpty, "\(rec.strays)")
    }

    @Test func probingRepeatsWhileTheFirstWritesAreLost() async throws {
        let rig = Rig(.init(dropFirstWrites: 2)) { .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        #expect(try await rig.session.run("id", deadline: .after(seconds: Self.soon)).stdoutText == "ran id\n")
        let rec = rig.guest.record
        #expect(rec.lostWrites == 2)
        #expect(rec.probes == 1, "the first probe the shell read was answered")
        #expect(rec.bootstraps == 1)
    }

    @Test func connectsThroughEchoPromptsAndNoise() async throws {
        let rig = Rig(.init(echo: true, prompt: "/ # ")) { _ in .ok("web-1\n") }
        // A kernel line, a prompt and marker look-alikes before any probe.
        rig.guest.emit("[    2.718281] random: crng init done\n/ # \u{01}123R\n\u{01}99E0\n\u{01}123B\n")
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        rig.guest.emit("[    3.141592] e1000: eth0 NIC Link is Up\n\u{01}123B\nhalf a frame\u{01}123E0\n")
        let r = try await rig.session.run("cat /etc/hostname", deadline: .after(seconds: Self.soon))
        #expect(r == CommandResult(stdout: bytes("web-1\n"), stderr: [], status: 0))
        #expect(rig.guest.record.strays.isEmpty, "\(rig.guest.record.strays)")
    }

    @Test func theFirstFrameLostToReadAheadIsProbedAgain() async throws {
        let rig = Rig(.init(swallowAfterBootstrap: true)) { .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        #expect(try await rig.session.run("true", deadline: .after(seconds: Self.soon)).stdoutText == "ran true\n")
        // (How often the bootstrap is typed again depends on time: a copy a
        // second at most. Not asserted, so that a loaded machine can't fail it.)
    }

    @Test func theContinuationPromptGetsAControlC() async throws {
        let rig = Rig(.init(echo: true, prompt: "# ", unclosedQuote: true)) { .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let rec = rig.guest.record
        #expect(rec.interrupts >= 1)
        #expect(rec.probes == 1, "probes typed inside the quote are swallowed")
        #expect(try await rig.session.run("w", deadline: .after(seconds: Self.soon)).stdoutText == "ran w\n")
    }

    @Test func theContinuationPromptWithoutEchoGetsAControlC() async throws {
        // No echo: the prompts arrive back to back, `> > `, with no newline between.
        let rig = Rig(.init(prompt: "# ", unclosedQuote: true)) { .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        #expect(rig.guest.record.interrupts >= 1)
        #expect(try await rig.session.run("w", deadline: .after(seconds: Self.soon)).stdoutText == "ran w\n")
    }

    @Test func aCommandBeforeConnectFails() async {
        let rig = Rig()
        guard case .scenario? = await Rig.failure({ _ = try await rig.session.run("true", deadline: .after(seconds: Self.soon)) }) else {
            Issue.record("run before connect did not fail as a scenario error"); return
        }
        #expect(rig.guest.record.writes == 0)
    }

    // MARK: Answers

    @Test func stdoutStderrAndStatusArriveExactly() async throws {
        let out = Array(0...255).map(UInt8.init) + bytes("\u{01}123B\n\u{01}123e\n\u{01}123E0\nno newline at the end")
        let err = [0xFF, 0x00, 0x01, 0x0D] + bytes("warning, no newline")
        let rig = Rig { cmd in
            cmd == "binary" ? .output(stdout: out, stderr: err, status: 42) : .output(stdout: bytes("x"), stderr: [], status: 255)
        }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let r = try await rig.session.run("binary", deadline: .after(seconds: Self.soon))
        #expect(r.stdout == out)
        #expect(r.stderr == err)
        #expect(r.status == 42)
        #expect(try await rig.session.run("other", deadline: .after(seconds: Self.soon)) == CommandResult(stdout: bytes("x"), stderr: [], status: 255))
    }

    @Test func commandsArriveIntactThroughSmallWrites() async throws {
        let command = "printf '%s\\n' \"it's\" | tr a-z A-Z\necho 'two'\n\tdone \\ $HOME"
        let rig = Rig(.init(maxBytesPerWrite: 7)) { .ok("ran \($0.count)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let r = try await rig.session.run(command, deadline: .after(seconds: Self.soon))
        #expect(r.stdoutText == "ran \(command.count)\n")
        #expect(rig.guest.record.commands == [command])
    }

    @Test func anAnswerSplitAtEveryBoundaryIsReassembled() async throws {
        // "cut N" cuts the answer's bytes after N; "cut all" after every byte.
        let rig = Rig { cmd in
            let arg = cmd.dropFirst(4)
            return .split(stdout: bytes("out\n"), stderr: bytes("err"), status: 1, cuts: arg == "all" ? Array(1..<100) : [Int(arg)!])
        }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let expected = CommandResult(stdout: bytes("out\n"), stderr: bytes("err"), status: 1)
        // The answer is 17 bytes plus three markers of 7 to 10 digits: under 50.
        for cut in (1..<50).map(String.init) + ["all"] {
            async let r = rig.session.run("cut \(cut)", deadline: .after(seconds: Self.soon))
            await rig.guest.deliverHeld()
            #expect(try await r == expected, "cut \(cut)")
        }
        #expect(!rig.guest.record.overlapped)
    }

    @Test func largeOutputInManyChunks() async throws {
        let out = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 * 7 % 251) }
        let rig = Rig { _ in .split(stdout: out, stderr: [], status: 0, cuts: Array(stride(from: 4093, to: 310_000, by: 4093))) }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        async let r = rig.session.run("cat big", deadline: .after(seconds: Self.soon))
        await rig.guest.deliverHeld()
        let result = try await r
        #expect(result.stdout.count == out.count)
        #expect(result.stdout == out)
        #expect(result.status == 0)
    }

    @Test func aCRLFTtyIsNormalisedBack() async throws {
        let rig = Rig(.init(echo: true, crlf: true, prompt: "# ")) { _ in
            .output(stdout: bytes("a\nb\n"), stderr: bytes("oops\n"), status: 2)
        }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let r = try await rig.session.run("printf 'a\\nb\\n'; echo oops >&2; exit 2", deadline: .after(seconds: Self.soon))
        #expect(r == CommandResult(stdout: bytes("a\nb\n"), stderr: bytes("oops\n"), status: 2))
    }

    // MARK: Failures

    @Test(arguments: FakeGuest.Interrupt.allCases)
    func aHangingCommandTimesOutThenTheShellWorks(_ interrupt: FakeGuest.Interrupt) async throws {
        let rig = Rig(.init(prompt: "/ # ", interrupt: interrupt)) { $0 == "sleep 1000" ? .never : .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let e = await Rig.failure { _ = try await rig.session.run("sleep 1000", deadline: .after(seconds: 0.3)) }
        guard let e, e.code == .timeout else { Issue.record("not a timeout: \(String(describing: e))"); return }
        let message = e.message
        #expect(message.contains("sleep 1000"))
        let rec = rig.guest.record
        #expect(rec.interrupts == 1)
        // A loop that survives ^C is used on; one that was given up is set up again.
        #expect(rec.bootstraps == (interrupt == .reportsStatus ? 1 : 2))
        #expect(try await rig.session.run("echo after", deadline: .after(seconds: Self.soon)).stdoutText == "ran echo after\n")
    }

    @Test func aCommandEndingAsItsDeadlinePassesLeavesTheLoopInPlace() async throws {
        let rig = Rig { $0 == "slow" ? .late(stdout: bytes("done\n"), status: 0) : .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let e = await Rig.failure { _ = try await rig.session.run("slow", deadline: .after(seconds: 0.3)) }
        #expect(e?.code == .timeout, "\(String(describing: e))")
        // The ^C found the loop idle: its trap answered after the command's
        // end, and nothing was typed before both were seen.
        #expect(rig.guest.record.interrupts == 1)
        #expect(rig.guest.record.bootstraps == 1, "the loop was used on, not set up again")
        #expect(rig.guest.record.strays.isEmpty, "\(rig.guest.record.strays)")
        #expect(try await rig.session.run("echo after", deadline: .after(seconds: Self.soon)).stdoutText == "ran echo after\n")
    }

    @Test func aGuestThatStopsReadingMakesRunTimeOut() async throws {
        let rig = Rig()
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        rig.guest.stopReading()
        let e = await Rig.failure { _ = try await rig.session.run("true", deadline: .after(seconds: 0.3)) }
        guard let e, e.code == .timeout else { Issue.record("not a timeout: \(String(describing: e))"); return }
        let message = e.message
        #expect(message.contains("not reading"), "\(message)")
        #expect(rig.guest.record.commands.isEmpty)
    }

    @Test func aGuestResettingMidCommandFailsItAtOnce() async throws {
        let rig = Rig { $0 == "upgrade" ? .reboot : .ok("ran \($0)\n") }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let e = await Rig.failure { _ = try await rig.session.run("upgrade", deadline: .after(seconds: 60)) }
        guard let e, e.code == .scenario else { Issue.record("not a scenario error: \(String(describing: e))"); return }
        let message = e.message
        #expect(message == "the guest rebooted by itself")
        // A deadline would have given a timeout, not this error: no clock needed.
        // The next boot (as `Machine.powerOnAgain` does it) connects afresh.
        rig.io.restart()
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        #expect(rig.guest.record.bootstraps == 2)
        #expect(try await rig.session.run("uptime", deadline: .after(seconds: Self.soon)).stdoutText == "ran uptime\n")
    }

    @Test func aControlCharacterInACommandIsRefusedUnsent() async throws {
        let rig = Rig()
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        let writes = rig.guest.record.writes
        guard case .scenario? = await Rig.failure({ _ = try await rig.session.run("echo \u{07}", deadline: .after(seconds: Self.soon)) }) else {
            Issue.record("a bell character was not refused"); return
        }
        #expect(rig.guest.record.writes == writes)
    }

    // MARK: Serialisation

    @Test func concurrentCommandsAreSerialised() async throws {
        let rig = Rig { cmd in
            cmd == "slow" ? .split(stdout: bytes("slow\n"), stderr: [], status: 0, cuts: [5, 9]) : .ok("\(cmd)\n")
        }
        try await rig.session.connect(deadline: .after(seconds: Self.soon))
        async let slow = rig.session.run("slow", deadline: .after(seconds: Self.soon))
        async let fast = rig.session.run("fast", deadline: .after(seconds: Self.soon))
        await rig.guest.deliverHeld()
        #expect(try await slow.stdoutText == "slow\n")
        #expect(try await fast.stdoutText == "fast\n")
        let rec = rig.guest.record
        #expect(!rec.overlapped, "a command was written while another's answer was pending")
        #expect(rec.commands.sorted() == ["fast", "slow"])
    }
}
