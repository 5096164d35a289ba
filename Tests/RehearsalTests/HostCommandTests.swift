import Foundation
import Testing
@testable import Rehearsal

/// Helpers (recipe builds, qemu-img…) start clean, apart from the terminal, and end when their time is up.
@Suite struct HostCommandTests {
    @Test func helperStartsWithDefaultSignalsInItsOwnGroupReadingNothing() throws {
        let out = try ChildProcessFixture.withHarnessSignalsIgnored {
            try HostCommand.run(["sh", "-c", "grep -E '^Sig(Ign|Blk)' /proc/self/status; cut -d' ' -f5 /proc/$$/stat; readlink /proc/$$/fd/0"])
        }
        let ignored = try #require(ChildProcessFixture.mask("SigIgn", in: out))
        #expect(ignored & ~ChildProcessFixture.glibcInternal == 0, "ignored: \(String(ignored, radix: 16))")
        #expect(ChildProcessFixture.mask("SigBlk", in: out) == 0)
        let lines = out.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines.dropFirst(2).first != String(getpgrp()))
        #expect(lines.last == "/dev/null")
    }

    @Test func aPipelineInsideAHelperEndsByBrokenPipe() throws {
        let error = ChildProcessFixture.withHarnessSignalsIgnored {
            #expect(throws: HostCommand.Failure.self) {
                try HostCommand.run(["bash", "-c", "set -o pipefail; yes | head -1 > /dev/null"])
            }
        }
        #expect(error?.status == 128 + SIGPIPE)
        #expect(error?.timedOut == nil)
    }

    @Test func aHelperPastItsTimeLimitIsEndedAndReportedAsTimedOut() throws {
        let error = #expect(throws: HostCommand.Failure.self) {
            try HostCommand.run(["sleep", "30"], timeout: 1)
        }
        #expect(error?.timedOut == 1)
        #expect(error?.status == 128 + SIGTERM)
        #expect(error?.description.contains("timed out after 1 s") == true)
    }

    @Test func aHelperIgnoringTerminateIsKilled() throws {
        let error = #expect(throws: HostCommand.Failure.self) {
            try HostCommand.run(["sh", "-c", "trap '' TERM; sleep 30"], timeout: 0.5, escalation: 0.5)
        }
        #expect(error?.timedOut == 0.5)
        #expect(error?.status == 128 + SIGKILL)
    }

    @Test func outputArrivesLineByLineAndAFailureCarriesIt() throws {
        let seen = Lines()
        #expect(try HostCommand.run(["sh", "-c", "echo one; echo two >&2; printf three"], onLine: seen.add) == "one\ntwo\nthree")
        #expect(seen.all == ["one", "two", "three"])
        let error = #expect(throws: HostCommand.Failure.self) { try HostCommand.run(["sh", "-c", "echo why; exit 3"]) }
        #expect(error?.status == 3)
        #expect(error?.description == "sh -c echo why; exit 3 exited with status 3: why")
    }

    /// Lines collected from `onLine`, which may be called from the reading thread.
    private final class Lines: @unchecked Sendable {
        // @unchecked: `lines` is guarded by `lock`.
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }
}
