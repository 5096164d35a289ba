import Foundation
import Testing
@testable import Rehearsal

/// `rehearse preview --root TREE -- apt-get dist-upgrade -y` on a Debian 12
/// stand-in host whose APT sources point at a local HTTP repository: the
/// packages are fetched on the host, the upgrade runs in a VM booted from a
/// fresh capture, and the host tree is left exactly as it was.
@Suite(.serialized) struct PreviewRunTests {
    @Test func anUpgradeThatWorksPassesAndOneThatBreaksAServiceFailsNamingIt() async throws {
        let root = try await HostTree.make()
        defer { try? FileManager.default.removeItem(at: root) }
        let repo = try #require(try await HostTree.debian().payloads["repo"])
        let served = TestGuest.runs.appendingPathComponent("apt-http-\(UUID().uuidString.prefix(8))")
        // good: demo 2.0 and the newer kernel; bad: demo 3.0 alone.
        try HostTree.repository(from: repo, into: served.appendingPathComponent("good")) { $0.hasPrefix("linux-image") || $0.hasPrefix("rehearse-demo_2.0") }
        try HostTree.repository(from: repo, into: served.appendingPathComponent("bad")) { $0.hasPrefix("rehearse-demo_3.0") }
        let (server, url) = try HostTree.serve(served)
        defer { server.terminate() }
        let newKernel = try String(contentsOf: repo.appendingPathComponent("kernel-release"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)

        try HostTree.useSource("\(url)/good", in: root)
        let before = try HostTree.fingerprint(root)
        var good = Preview(command: try AptCommand(["apt-get", "dist-upgrade", "-y"]))
        good.capture.root = root.path
        good.capture.name = "preview-host"
        let frozen = good
        let r = try await frozen.run(runner: TestGuest.runner)
        #expect(r.passed, "\(r.run.message ?? "") \(r.run.steps.map { "\($0.name): \($0.outcome) \($0.message ?? "") \($0.stdout ?? "")" })")
        #expect(r.downloaded.contains { $0.hasPrefix("rehearse-demo_2.0") } && r.downloaded.contains { $0.hasPrefix("linux-image-\(newKernel)") }, "\(r.downloaded)")
        let c = try #require(r.comparison)
        #expect(c.packages.contains { $0.name == "rehearse-demo" && $0.old == "1.0" && $0.new == "2.0" && $0.kind == .upgraded }, "\(c.packages)")
        #expect(c.packages.contains { $0.name == "linux-image-amd64" && $0.kind == .upgraded }, "\(c.packages)")
        #expect(c.portsOpened.contains { $0.hasSuffix(":8081") || $0.hasSuffix(" 8081") || $0 == "8081" || $0.contains("8081") }, "\(c.portsOpened)")
        #expect(c.new.snapshot.kernel == newKernel, "the new kernel booted: \(c.new.snapshot.kernel ?? "-")")
        #expect(c.old.snapshot.kernel != newKernel)
        for k in ["capture", "download", "boot", "command", "reboot", "probes"] { #expect(r.seconds[k] != nil, "no time for \(k)") }
        #expect(try HostTree.fingerprint(root) == before, "the preview changed the host tree")

        // The same host, offered demo 3.0: the upgrade installs, and the service fails to start after it.
        try HostTree.useSource("\(url)/bad", in: root)
        let beforeBad = try HostTree.fingerprint(root)
        let bad = try await frozen.run(runner: TestGuest.runner)
        #expect(!bad.passed)
        #expect(bad.run.outcome == .failed)
        let failed = try #require(bad.run.steps.first { $0.outcome == .failed })
        #expect((bad.run.message ?? "").contains("rehearse-demo.service"), "\(bad.run.message ?? "")")
        #expect((failed.stdout ?? "").contains("rehearse-demo"), "its status and journal: \(failed.stdout ?? "")")
        #expect(try HostTree.fingerprint(root) == beforeBad, "the preview changed the host tree")
    }
}
