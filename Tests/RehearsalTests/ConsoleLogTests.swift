import Foundation
import Testing
@testable import Rehearsal

@Suite struct ConsoleLogTests {
    func log(_ allowed: [String] = []) throws -> ConsoleLog {
        ConsoleLog(started: Stopwatch(), transcript: nil, allowed: try allowed.map(ConsolePattern.init))
    }

    @Test func linesAreCleanedOfCarriageReturnsAndEscapes() throws {
        var l = try log()
        _ = l.append(Array("/ # \u{1b}[6necho hi\r\r\nhi\r\npartial".utf8))
        #expect(l.lines == ["/ # echo hi", "hi"])
        #expect(l.tail(5) == ["/ # echo hi", "hi", "partial"])
    }

    @Test(arguments: [
        ("[    3.1] Kernel panic - not syncing: sysrq triggered crash", "kernel panic"),
        ("[    3.1] BUG: kernel NULL pointer dereference, address: 0000000000000000", "kernel BUG"),
        ("[    3.1] Oops: 0002 [#1] PREEMPT SMP NOPTI", "kernel oops"),
        ("[    3.1] WARNING: CPU: 0 PID: 1 at kernel/foo.c:12 bar+0x1/0x2", "kernel warning"),
        ("[    3.1] Call Trace:", "call trace"),
        ("[    3.1] sh[77]: segfault at 0 ip 00007f sp 00007ffd error 4", "segfault"),
        ("[    3.1] sh invoked oom-killer: gfp_mask=0x0", "out of memory"),
        ("You are in emergency mode. After logging in, type \"journalctl -xb\"", "emergency shell"),
    ])
    func troubleIsRecognised(line: String, kind: String) throws {
        var l = try log()
        let found = l.append(Array((line + "\n").utf8))
        #expect(found.map(\.kind) == [kind])
    }

    /// What a starved vCPU prints under TCG on a busy host (seen in a CI run).
    @Test func aSoftLockupReportIsTheHostsLoadNotTrouble() throws {
        var l = try log()
        let report = """
        [   41.427610] watchdog: BUG: soft lockup - CPU#0 stuck for 21s! [modprobe:38]
        [   41.430000] Modules linked in: virtio_blk
        [   41.431000] CPU: 0 PID: 38 Comm: modprobe Not tainted 6.1.0-57-amd64 #1  Debian 6.1.158-1
        [   41.432000] RIP: 0010:_raw_spin_unlock_irqrestore+0x21/0x40
        [   41.433000] Call Trace:
        [   41.434000]  <TASK>
        [   41.435000]  load_module+0x1a2/0x1e0
        [   41.436000]  </TASK>
        [   41.500000] rcu: INFO: rcu_preempt self-detected stall on CPU
        [   41.501000] Call Trace:
        [   41.502000]  </TASK>

        """
        #expect(l.append(Array(report.utf8)).isEmpty, "\(l.trouble)")
        #expect(l.starvation.count == 2)
        // Past the report, a call trace is trouble again.
        #expect(l.append(Array("[   50.0] Call Trace:\n".utf8)).map(\.kind) == ["call trace"])
    }

    @Test func ordinaryLinesAreNotTrouble() throws {
        var l = try log()
        let found = l.append(Array("[    0.1] Booting paravirtualized kernel\nDEBUG: all fine\nno bugs here\n".utf8))
        #expect(found.isEmpty)
    }

    @Test func allowedPatternsSilenceAMatch() throws {
        var l = try log(["WARNING: CPU: .* at drivers/known/"])
        #expect(l.append(Array("WARNING: CPU: 0 PID: 1 at drivers/known/x.c:1\n".utf8)).isEmpty)
        #expect(l.append(Array("WARNING: CPU: 0 PID: 1 at drivers/other/x.c:1\n".utf8)).count == 1)
    }

    @Test func searchTextStartsAfterConsumedLines() throws {
        var l = try log()
        _ = l.append(Array("one\ntwo\nthree".utf8))
        l.searchFrom = 1
        #expect(l.unsearchedText == "two\nthree")
    }
}
