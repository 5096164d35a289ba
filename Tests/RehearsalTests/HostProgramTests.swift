import Foundation
import Testing
@testable import Rehearsal

/// `rehearse gate`'s COMMAND must behave as if typed at the shell that started rehearse.
@Suite struct HostProgramTests {
    @Test func commandStartsWithDefaultSignalsAndAnEmptyMask() throws {
        let dir = try ChildProcessFixture.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("status").path
        // Blocked on this thread only, so the parallel tests do not notice.
        var usr1 = sigset_t(), old = sigset_t()
        sigemptyset(&usr1); sigaddset(&usr1, SIGUSR1)
        pthread_sigmask(SIG_BLOCK, &usr1, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        let status = try ChildProcessFixture.withHarnessSignalsIgnored {
            try HostProgram.run(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status > \(out)"])
        }
        #expect(status == 0)
        let lines = try String(contentsOfFile: out, encoding: .utf8)
        let ignored = try #require(ChildProcessFixture.mask("SigIgn", in: lines))
        #expect(ignored & ~ChildProcessFixture.glibcInternal == 0, "ignored: \(String(ignored, radix: 16))")
        #expect(ChildProcessFixture.mask("SigBlk", in: lines) == 0)
    }

    @Test func aPipelineEndsByBrokenPipeAsAtAShell() throws {
        // `yes` dies of SIGPIPE (141 under pipefail); with SIGPIPE ignored it
        // would get EPIPE, complain and exit 1 instead.
        let status = try ChildProcessFixture.withHarnessSignalsIgnored {
            try HostProgram.run(["bash", "-c", "set -o pipefail; yes | head -1 > /dev/null"])
        }
        #expect(status == 128 + SIGPIPE)
    }

    @Test func commandRunsInTheHarnessProcessGroup() throws {
        let dir = try ChildProcessFixture.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("pgid").path
        #expect(try HostProgram.run(["sh", "-c", "cut -d' ' -f5 /proc/$$/stat > \(out)"]) == 0)
        let pgid = try String(contentsOfFile: out, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(pgid == String(getpgrp()))
    }

    @Test func commandInheritsStandardFilesAndNothingElse() throws {
        let dir = try ChildProcessFixture.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("fds").path
        // Deliberately without O_CLOEXEC, like a descriptor some library left open.
        let stray = open("/dev/null", O_RDONLY)
        try #require(stray > 2)
        defer { close(stray) }
        let script = """
            if [ -e /proc/$$/fd/\(stray) ]; then s=leaked; else s=closed; fi
            a=$(readlink /proc/$$/fd/0); b=$(readlink /proc/$$/fd/1); c=$(readlink /proc/$$/fd/2)
            printf '%s\n' "$a" "$b" "$c" $s > \(out)
            """
        #expect(try HostProgram.run(["sh", "-c", script]) == 0)
        let lines = try String(contentsOfFile: out, encoding: .utf8).split(separator: "\n").map(String.init)
        let mine = try (0...2).map { try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
        #expect(lines == mine + ["closed"])
    }

    @Test func commandReadsTheStandardInputItIsGiven() throws {
        let dir = try ChildProcessFixture.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("got").path
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        _ = "hello\n".withCString { write(fds[1], $0, 6) }
        close(fds[1])
        #expect(try HostProgram.run(["sh", "-c", "read x; echo got-$x > \(out)"], stdio: [fds[0], 1, 2]) == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "got-hello\n")
    }

    @Test func statusIsTheExitCodeOr128PlusTheSignal() throws {
        #expect(try HostProgram.run(["sh", "-c", "exit 7"]) == 7)
        #expect(try HostProgram.run(["sh", "-c", "kill -TERM $$"]) == 128 + SIGTERM)
        #expect(throws: (any Error).self) { try HostProgram.run(["rehearse-no-such-command"]) }
    }
}
