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
        defer { try? FileManager.default.removeItem(at: TestGuest.state.hostCaptures.appendingPathComponent("preview-host")) }
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
        // For the record (never asserted): where a preview's time goes on this machine.
        print("preview phases: " + r.seconds.sorted { $0.key < $1.key }.map { String(format: "%@ %.1f s", $0.key, $0.value) }.joined(separator: ", "))
        #expect(try HostTree.fingerprint(root) == before, "the preview changed the host tree")

        // gate --preview: the same preview, and then COMMAND on the tree (chrooted).
        let gate = try CommandLineTests.start(["gate", "--preview", "--root", root.path, "--name", "preview-host", "--", "apt-get", "dist-upgrade", "-y"],
                                              environment: ["DEBIAN_FRONTEND": "noninteractive"])
        #expect(await gate.wait(900) == 0, "\(gate.out)\n\(gate.err)")
        #expect(gate.out.contains("PREVIEW PASSED") && gate.out.contains("running: apt-get dist-upgrade -y (chrooted into"), "\(gate.out)")
        #expect(try HostTree.installedVersion("rehearse-demo", in: root) == "2.0", "COMMAND ran on the tree")
        #expect(GateHistory(state: TestGuest.state).records().last?.decision == .ran)
    }

    @Test func gateRefusesAnUpgradeThatBreaksAServiceAndLeavesTheHostAsItWas() async throws {
        let root = try await HostTree.make()
        defer { try? FileManager.default.removeItem(at: root) }
        let repo = try #require(try await HostTree.debian().payloads["repo"])
        let served = TestGuest.runs.appendingPathComponent("apt-http-\(UUID().uuidString.prefix(8))")
        try HostTree.repository(from: repo, into: served) { $0.hasPrefix("rehearse-demo_3.0") }
        let (server, url) = try HostTree.serve(served)
        defer { server.terminate() }
        try HostTree.useSource(url, in: root)
        let before = try HostTree.fingerprint(root)
        defer { try? FileManager.default.removeItem(at: TestGuest.state.hostCaptures.appendingPathComponent("preview-bad")) }
        let gate = try CommandLineTests.start(["gate", "--preview", "--root", root.path, "--name", "preview-bad", "--", "apt-get", "dist-upgrade", "-y"])
        #expect(await gate.wait(900) == 1, "\(gate.out)\n\(gate.err)")
        #expect(gate.out.contains("PREVIEW FAILED") && gate.out.contains("rehearse-demo.service"), "\(gate.out)")
        #expect(gate.out.contains("rehearse-demo 3.0") || gate.out.contains("JSON"), "the unit's status and journal: \(gate.out)")
        #expect(gate.out.contains("gate: refused"), "\(gate.out)")
        #expect(try HostTree.fingerprint(root) == before, "the preview or the gate changed the host tree")
        #expect(try HostTree.installedVersion("rehearse-demo", in: root) == "1.0")
        #expect(GateHistory(state: TestGuest.state).records().last?.decision == .refused)
    }
}
