import Foundation
import Testing
@testable import Rehearsal

/// The comparison's logic on recorded probe outputs: version order, the
/// classification of every kind of change, and the report's escaping.
@Suite struct CompareTests {
    @Test(arguments: [
        ("1.0", "1.0", 0), ("1.0", "1.1", -1), ("1.0~rc1", "1.0", -1), ("1.0~~", "1.0~", -1), ("1.0~", "1.0", -1),
        ("1.0", "1.0a", -1), ("1.0+b1", "1.0", 1), ("1:1.0", "2.0", 1), ("0:1.0", "1.0", 0), ("2:0.1", "1:9.9", 1),
        ("1.0-1", "1.0-2", -1), ("1.0-1~bpo12+1", "1.0-1", -1), ("6.1.176-1", "6.1.192-2", -1), ("10", "9", 1),
        ("1.02", "1.2", 0), ("2.06-13+deb12u2", "2.06-13+deb12u1", 1), ("1.0-1", "1.0", 1), ("a", "+", -1),
    ])
    func versionsOrderTheWayDpkgOrdersThem(a: String, b: String, expected: Int) {
        let r = DebianVersion.compare(DebianVersion(a), DebianVersion(b))
        #expect(r.signum() == expected, "\(a) vs \(b): \(r)")
        #expect(DebianVersion.compare(DebianVersion(b), DebianVersion(a)).signum() == -expected)
    }

    static let dpkgOld = "#dpkg\nii \tbash\t5.2.15-2+b7\nii \trehearse-demo\t1.0\nii \tlibfoo\t1:2.0-1\nii \tgone\t1.0\nrc \tremoved-earlier\t0.9\n"
    static let dpkgNew = "#dpkg\nii \tbash\t5.2.15-2+b7\nii \trehearse-demo\t2.0\nii \tlibfoo\t1:2.0~rc1-1\nii \tfresh\t0.1\n"

    @Test func packagesAreClassifiedWithTheirVersionPairs() {
        let a = Probes.parsePackages(Self.dpkgOld), b = Probes.parsePackages(Self.dpkgNew)
        #expect(a["dpkg"]?["removed-earlier"] == nil, "only installed packages count")
        let changes = Comparison.diffPackages(a, b)
        let byName = Dictionary(uniqueKeysWithValues: changes.map { ($0.name, $0) })
        #expect(byName["rehearse-demo"]?.kind == .upgraded && byName["rehearse-demo"]?.old == "1.0" && byName["rehearse-demo"]?.new == "2.0")
        #expect(byName["libfoo"]?.kind == .downgraded, "a tilde sorts before the release")
        #expect(byName["gone"]?.kind == .removed && byName["fresh"]?.kind == .added)
        #expect(byName["bash"] == nil)
    }

    static let unitsOld = """
    rehearse-demo.service loaded active running Rehearsal demo service 1.0
    ssh.service loaded inactive dead OpenSSH
    old.service loaded active running Old
    ghost.service not-found inactive dead ghost.service
    session-1.scope loaded active running Session 1
    #files
    rehearse-demo.service enabled enabled
    ssh.service disabled enabled
    old.service enabled enabled
    """
    static let unitsNew = """
    rehearse-demo.service loaded failed failed Rehearsal demo service 3.0
    ssh.service loaded active running OpenSSH
    session-2.scope loaded active running Session 2
    #files
    rehearse-demo.service enabled enabled
    ssh.service enabled enabled
    """

    @Test func unitsNewlyFailingComeFirstAndCountAsRegressions() throws {
        let a = Probes.parseUnits(Self.unitsOld), b = Probes.parseUnits(Self.unitsNew)
        #expect(a["ghost.service"] == nil && a["session-1.scope"] == nil)
        let changes = Comparison.diffUnits(a, b)
        #expect(changes.first?.name == "rehearse-demo.service" && changes.first?.kind == .newlyFailing)
        #expect(changes.contains { $0.name == "ssh.service" && $0.kind == .newlyActive })
        #expect(changes.contains { $0.name == "old.service" && $0.kind == .gone })
        var c = try Self.comparison()
        c.units = changes
        #expect(c.regressions == ["unit rehearse-demo.service fails on new (active on old)"])
    }

    @Test func portsDropPIDsAndShowWhatOpened() {
        let a = Probes.parsePorts("tcp   LISTEN 0      8      127.0.0.1:8080      0.0.0.0:*    users:((\"rehearse-demo\",pid=207,fd=3))\n")
        let b = Probes.parsePorts("""
        tcp   LISTEN 0      8      127.0.0.1:8080      0.0.0.0:*    users:(("rehearse-demo",pid=311,fd=3))
        tcp   LISTEN 0      8      127.0.0.1:8081      0.0.0.0:*    users:(("rehearse-demo",pid=311,fd=4))
        """)
        #expect(a == ["tcp 127.0.0.1:8080 rehearse-demo"])
        #expect(b.subtracting(a) == ["tcp 127.0.0.1:8081 rehearse-demo"])
    }

    @Test func systemdTimingAndOSReleaseParse() {
        let t = Probes.parseSystemdTime("Startup finished in 4.903s (kernel) + 1min 2.5s (initrd) + 850ms (userspace) = 1min 8.253s \ngraphical.target reached\n")
        #expect(t == ["kernel": 4.903, "initrd": 62.5, "userspace": 0.85])
        let o = Probes.parseOSRelease("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n# comment\n")
        #expect(o == ["PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "ID": "debian"])
        let h = Probes.parseHashes(String(repeating: "a", count: 64) + "  /etc/hostname\n" + String(repeating: "b", count: 64) + "  /etc/machine-id\n")
        #expect(h == ["/etc/hostname": String(repeating: "a", count: 64)], "the machine id changes every boot: never compared")
    }

    static func side(_ name: String, steps: [StepResult] = [], units: String = unitsOld, packages: String = dpkgOld) throws -> Comparison.Side {
        var s = Snapshot()
        s.packages = Probes.parsePackages(packages)
        s.units = Probes.parseUnits(units)
        s.kernel = "6.1.0-50-amd64"
        let g = Generation(name: name, version: "1", boot: .direct, digest: String(repeating: "0", count: 64), recipe: "r",
                           recipeDigest: "r", directory: "/", builtAt: Date(timeIntervalSince1970: 0), size: 0)
        return Comparison.Side(generation: g, snapshot: s, bootSeconds: [21, 22, 20], steps: steps, runDirectory: nil)
    }

    static func comparison() throws -> Comparison { Comparison(old: try side("a"), new: try side("a")) }

    @Test func aGenerationComparedWithItselfHasNoDifferences() throws {
        let c = try Self.comparison()
        #expect(!c.hasDifferences && c.regressions.isEmpty)
        #expect(c.bootTime.change == 0 && c.bootTime.oldMedian == 21 && c.bootTime.oldMin == 20 && c.bootTime.noise == 2)
        #expect(c.notes.contains { $0.contains("machine-id") }, "what was normalised is said")
    }

    @Test func assertionsAreRegressionsFixesOrAlreadyBroken() throws {
        func step(_ name: String, _ o: Outcome) -> StepResult {
            StepResult(name: name, kind: "succeed", line: 1, command: "x", outcome: o, seconds: 0, message: o == .failed ? "exit status 1" : nil)
        }
        let old = try Self.side("a", steps: [step("s1", .passed), step("s2", .failed), step("s3", .failed), step("s4", .passed)])
        let new = try Self.side("b", steps: [step("s1", .failed), step("s2", .failed), step("s3", .passed), step("s4", .passed)])
        let c = Comparison(old: old, new: new)
        #expect(c.assertions.map(\.kind) == [.regression, .alreadyBroken, .fix, .passes])
        #expect(c.regressions == ["step `s1` passed on old, fails on new: exit status 1"])
    }

    @Test func theReportEscapesGuestTextAndPutsRegressionsFirst() throws {
        let evil = "<script>alert('x')</script>"
        var new = try Self.side("b", units: Self.unitsNew, packages: Self.dpkgNew)
        new.snapshot.kernel = evil
        let c = Comparison(old: try Self.side("a"), new: new)
        let html = CompareReport.html(c)
        #expect(!html.contains(evil) && html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"))
        let regressions = try #require(html.range(of: "id=\"regressions\""))
        let packages = try #require(html.range(of: "id=\"packages\""))
        #expect(regressions.lowerBound < packages.lowerBound)
        #expect(!html.contains("http://") && !html.contains("https://"), "no external assets")
    }
}
