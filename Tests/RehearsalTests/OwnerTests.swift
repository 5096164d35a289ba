import Foundation
import Testing
@testable import Rehearsal

/// Owners of domains: a sweep destroys a domain only when the process that
/// started it is known to be dead, never one of another host or user.
@Suite struct OwnerTests {
    let me = Owner.current

    /// A PID no process has (above any pid_max, so `kill` answers ESRCH).
    func unusedPID() -> Int32 {
        var pid = Int32.max - 1
        while kill(pid, 0) == 0 || errno != ESRCH { pid -= 1 }
        return pid
    }

    /// The metadata element a domain owned by `owner` carries.
    func metadata(_ owner: Owner) -> String {
        var x = DomainXML(name: "m", accelerator: .tcg, memoryMiB: 256, cpus: 1, kernel: nil, initrd: nil, cmdline: nil,
                          runID: "r1", scenario: "s")
        x.owner = owner
        let xml = x.render()
        let start = xml.range(of: "<rh:machine")!.lowerBound
        return String(xml[start...xml[start...].firstIndex(of: ">")!])
    }

    @Test func theCurrentProcessIsAliveAndNotSwept() throws {
        let started = try #require(me.startTime)
        #expect(started.ticks > 0 && started.boot == Owner.bootID())
        #expect(me.host?.contains("/pid:[") == true, "machine id and PID namespace")
        #expect(me.liveness() == .alive)
        #expect(!Janitor.ownerIsDead(metadata(me)))
    }

    @Test func aPIDNoProcessHasIsDeadAndSwept() {
        let gone = Owner(host: me.host, pid: unusedPID(), startTime: me.startTime)
        #expect(gone.liveness() == .dead)
        #expect(Janitor.ownerIsDead(metadata(gone)))
    }

    @Test func aReusedPIDIsDead() throws {
        let started = try #require(me.startTime)
        // Our PID, but the owner started at another tick: the number was taken over.
        let reused = Owner(host: me.host, pid: me.pid, startTime: .init(boot: started.boot, ticks: started.ticks + 1))
        #expect(reused.liveness() == .dead)
        #expect(Janitor.ownerIsDead(metadata(reused)))
        // An owner from an earlier boot of this host is gone whatever holds its PID now.
        let earlierBoot = Owner(host: me.host, pid: me.pid, startTime: .init(boot: "another-boot", ticks: started.ticks))
        #expect(earlierBoot.liveness() == .dead)
    }

    @Test func anotherHostsDomainIsUnknownAndNotSwept() {
        // Its PID means nothing here; the old rule (kill fails, so dead) swept it.
        let remote = Owner(host: "0123456789abcdef0123456789abcdef/pid:[4026531836]", pid: unusedPID(),
                           startTime: .init(boot: "b", ticks: 1))
        #expect(remote.liveness() == .unknown)
        #expect(!Janitor.ownerIsDead(metadata(remote)))
        #expect(remote.liveness(probe: { _ in Issue.record("another host's PID was probed here"); return ESRCH }) == .unknown)
    }

    @Test func anotherUsersProcessAnsweringEPERMIsAlive() throws {
        let started = try #require(me.startTime)
        let owner = Owner(host: me.host, pid: 4242, startTime: started)
        let eperm: (Int32) -> Int32 = { _ in EPERM }
        // /proc hides it (hidepid), or shows the same start time: alive.
        #expect(owner.liveness(probe: eperm, started: { _ in nil }) == .alive)
        #expect(owner.liveness(probe: eperm, started: { _ in started }) == .alive)
        // /proc shows another start time: the PID was reused by another user's process.
        #expect(owner.liveness(probe: eperm, started: { _ in .init(boot: started.boot, ticks: started.ticks + 9) }) == .dead)
        // The sweep's decision, which the old rule (kill failed) got wrong.
        #expect(!Janitor.ownerIsDead(metadata(owner)) { $0.liveness(probe: eperm, started: { _ in nil }) })
        // Old pid-only metadata: EPERM is alive too.
        #expect(Owner.judge(Owner(host: nil, pid: 4242, startTime: nil), probe: EPERM, started: nil) == .alive)
    }

    @Test func whatCantBeToldIsUnknownAndNotSwept() {
        // Same host, a live PID, but no start time recorded.
        #expect(Owner(host: me.host, pid: me.pid, startTime: nil).liveness() == .unknown)
        // A probe that fails for another reason.
        #expect(Owner.judge(Owner(host: me.host, pid: 7, startTime: me.startTime), probe: EINVAL, started: nil) == .unknown)
        // No pid at all.
        #expect(!Janitor.ownerIsDead("<rh:machine xmlns:rh='\(DomainXML.namespace)' run='r' scenario='s'/>"))
    }

    @Test func oldPIDOnlyMetadataStillReads() {
        let old = { (pid: Int32) in "<rh:machine xmlns:rh=\"\(DomainXML.namespace)\" run=\"r\" pid=\"\(pid)\" scenario=\"s\"/>" }
        #expect(Owner(attribute: { Janitor.attribute($0, in: old(5)) }) == Owner(host: nil, pid: 5, startTime: nil))
        #expect(Janitor.ownerIsDead(old(unusedPID())), "ESRCH: dead, as before")
        #expect(!Janitor.ownerIsDead(old(getpid())))
    }

    @Test func metadataRoundTripsThroughTheDomainXML() throws {
        let owner = Owner(host: "3d1219c7c4c5404aaa1f6d2a48adfda4/pid:[4026531836]", pid: 1234,
                          startTime: .init(boot: "d820f68a-5e5a-4d4e-a94c-95322adc6be7", ticks: 98765))
        let element = metadata(owner)
        #expect(element.contains("pid='1234'") && element.contains("started='d820f68a-5e5a-4d4e-a94c-95322adc6be7/98765'"))
        #expect(Owner(attribute: { Janitor.attribute($0, in: element) }) == owner)
        // libvirt hands the element back with double quotes.
        let rewritten = element.replacingOccurrences(of: "'", with: "\"")
        #expect(Owner(attribute: { Janitor.attribute($0, in: rewritten) }) == owner)
        #expect(Janitor.attribute("run", in: rewritten) == "r1")
        // The default owner is this process.
        #expect(Owner(attribute: { Janitor.attribute($0, in: metadata(.current)) }) == me)
    }

    @Test func theStartTimeIsField22EvenWithParenthesesInTheName() {
        let fields = (3...52).map { $0 == 22 ? "777" : "\($0)" }.joined(separator: " ")
        #expect(Owner.parseStat("42 (a) b (c)) \(fields)") == 777)
        #expect(Owner.parseStat("42 (short) S 1") == nil)
    }
}
