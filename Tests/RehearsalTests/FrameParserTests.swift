import Testing
@testable import Rehearsal

/// The console protocol against recorded and adversarial transcripts.
@Suite struct FrameParserTests {
    static let m = 1234567
    func frame(_ out: String, err: String? = nil, status: Int = 0, marker: Int = m, nl: String = "\n") -> [UInt8] {
        var s = "\u{01}\(marker)B\(nl)" + out
        if let err { s += "\u{01}\(marker)e\(nl)" + err }
        s += "\u{01}\(marker)E\(status)\(nl)"
        return Array(s.utf8)
    }

    func parse(_ chunks: [[UInt8]], crlf: Bool = false) throws -> FrameParser {
        var p = FrameParser(marker: Self.m, crlf: crlf)
        for c in chunks { try p.feed(c) }
        return p
    }

    @Test func plainAnswer() throws {
        let p = try parse([frame("hi\n")])
        #expect(p.result == CommandResult(stdout: Array("hi\n".utf8), stderr: [], status: 0))
    }

    @Test func stderrAndStatusComeBackSeparately() throws {
        let p = try parse([frame("out", err: "bad things\n", status: 3)])
        #expect(p.result?.stdoutText == "out")
        #expect(p.result?.stderrText == "bad things\n")
        #expect(p.result?.status == 3)
    }

    @Test func echoAndPromptsBeforeTheFrameAreNoise() throws {
        let echo = Array("__rh 1000000 234567 'echo hi'\r\n/ # \u{1b}[6n".utf8)
        let p = try parse([echo + frame("hi\n")])
        #expect(p.result?.stdoutText == "hi\n")
        #expect(p.noise.count > 0)
    }

    @Test(arguments: [1, 2, 3, 5, 7, 64])
    func splitReadsAtEveryBoundary(size: Int) throws {
        let bytes = Array("noise".utf8) + frame("line one\nline two", err: "warn", status: 42) + Array("tail".utf8)
        let chunks = stride(from: 0, to: bytes.count, by: size).map { Array(bytes[$0..<min($0 + size, bytes.count)]) }
        let p = try parse(chunks)
        #expect(p.result?.stdoutText == "line one\nline two")
        #expect(p.result?.stderrText == "warn")
        #expect(p.result?.status == 42)
        #expect(p.remainder == Array("tail".utf8))
    }

    @Test func markerLookalikesInOutputAreOutput() throws {
        // Another command's markers, a prompt, and our marker digits without the lead byte.
        let tricky = "\u{01}7654321E0\n\u{01}123456B\n/ # \(Self.m)E0\n\u{01}\(Self.m)X\n"
        let p = try parse([frame(tricky)])
        #expect(p.result?.stdoutText == tricky)
        #expect(p.result?.status == 0)
    }

    @Test func binaryOutputPassesThrough() throws {
        let binary = (0...255).map { UInt8($0) } + [0xff, 0xfe, 0x00, 0x80]
        var bytes = Array("\u{01}\(Self.m)B\n".utf8) + binary
        bytes += Array("\u{01}\(Self.m)E0\n".utf8)
        let p = try parse([bytes])
        #expect(p.result?.stdout == binary)
    }

    @Test func longOutputWithoutTrailingNewline() throws {
        let big = String(repeating: "x", count: 300_000)
        let bytes = frame(big)
        let chunks = stride(from: 0, to: bytes.count, by: 4096).map { Array(bytes[$0..<min($0 + 4096, bytes.count)]) }
        let p = try parse(chunks)
        #expect(p.result?.stdout.count == 300_000)
        #expect(p.result?.stdout.last == UInt8(ascii: "x"))
    }

    @Test func kernelMessageBetweenFramesIsIgnored() throws {
        let kmsg = Array("[   12.345678] random: crng init done\r\n".utf8)
        let p = try parse([kmsg, frame("ok\n")])
        #expect(p.result?.stdoutText == "ok\n")
    }

    @Test func crlfTtyIsNormalised() throws {
        let p = try parse([frame("a\r\nb\r\n", nl: "\r\n")], crlf: true)
        #expect(p.result?.stdoutText == "a\nb\n")
    }

    @Test func garbledStatusIsAnError() {
        var p = FrameParser(marker: Self.m)
        let e = #expect(throws: RehearsalError.self) {
            try p.feed(Array("\u{01}\(Self.m)B\nout\u{01}\(Self.m)Eabc\n".utf8))
        }
        #expect(e?.message == "malformed exit status \"abc\" in the guest's answer")
    }

    @Test func nothingBeforeTheWholeFrame() throws {
        let p = try parse([Array("\u{01}\(Self.m)B\nhalf".utf8)])
        #expect(p.result == nil)
    }

    @Test func invocationQuotesAndRefusesControlCharacters() throws {
        let line = try ShellProtocol.invocation("echo 'a b' \"$HOME\"", 1, 2)
        #expect(line == "__rh 1 2 'echo '\\''a b'\\'' \"$HOME\"'\n")
        let e = #expect(throws: RehearsalError.self) { try ShellProtocol.invocation("echo \u{03}", 1, 2) }
        #expect(e?.code == .scenario && e?.message.hasPrefix("command contains control character 0x3") == true)
        // The guest's loop reads one line per command: newlines travel as a variable.
        #expect(try ShellProtocol.invocation("a\nb", 1, 2) == "__rh 1 2 'a'\"$__rhnl\"'b'\n")
    }

    @Test func bootstrapFitsBusyboxLineEditing() {
        #expect(ShellProtocol.bootstrap.utf8.count < 1024)
        #expect(ShellProtocol.bootstrap.filter { $0 == "\n" }.count == 1)
    }

    @Test func probeAnswerIsFoundButNotItsEcho() {
        // The echo shows the sum unevaluated; only the guest's answer has the number.
        let echo = Array("printf '\\001%sR\\n' $((1000000+2000000))\r\n".utf8)
        #expect(ShellProtocol.findLine(marker: 3_000_000, kind: "R", in: echo) == nil)
        let answer = echo + Array("\u{01}3000000R\r\n".utf8)
        let hit = ShellProtocol.findLine(marker: 3_000_000, kind: "R", in: answer)
        #expect(hit?.crlf == true)
        #expect(hit?.end == answer.count)
    }
}

/// Recovering a shell left waiting for the end of a cut-off line.
@Suite struct ContinuationPromptTests {
    @Test func aShellInsideAnUnclosedQuoteIsRecognised() {
        // Recorded on the channel after a reboot: bash at its continuation prompt, swallowing probes.
        let stuck = "\u{1B}[?2004h> printf '\\001%sR\\n' $((422217732+88017085))\r\n\u{1B}[?2004l\r\u{1B}[?2004h> "
        #expect(ShellProtocol.endsAtContinuationPrompt(Array(stuck.utf8)))
        #expect(!ShellProtocol.endsAtContinuationPrompt(Array("root@rehearse-debian:~# ".utf8)))
        #expect(!ShellProtocol.endsAtContinuationPrompt(Array("\u{1}42R\r\n".utf8)))
        #expect(!ShellProtocol.endsAtContinuationPrompt(Array("a > ".utf8)), "a `>` inside a line is not a prompt")
        #expect(ShellProtocol.endsAtContinuationPrompt(Array("> > ".utf8)), "prompts with echo off")
    }

    @Test func theProbeHasNoQuotesToLeaveOpen() {
        let probe = ShellProtocol.probe(1, 2)
        #expect(!probe.contains("'") && !probe.contains("\""))
        #expect(probe == "printf \\\\001%sR\\\\n $((1+2))\n")
    }
}
