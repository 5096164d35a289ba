import Foundation
import Testing
@testable import Rehearsal

/// `rehearse host capture --root` on a Debian 12 tree made to look like a
/// host of its own (the debian recipe's tree, unpacked), booted under TCG by
/// GRUB from the captured disk.
@Suite(.serialized) struct HostCaptureRunTests {
    @Test func aCapturedTreeBootsByGrubAdaptedAndAgainUnchangedIsReused() async throws {
        let root = try await HostTree.make()
        defer { try? FileManager.default.removeItem(at: root) }
        let before = try HostTree.fingerprint(root)
        let capture = { var c = HostCapture(); c.root = root.path; c.excludes = ["/srv/secret"]; return c }()
        // Its mirror and disk are a few GiB: not kept after the test.
        defer { try? FileManager.default.removeItem(at: TestGuest.state.hostCaptures.appendingPathComponent(capture.name)) }
        let first = try await offload { try capture.run(state: TestGuest.state) }
        let g = first.generation
        #expect(!first.reused)
        #expect(g.boot == .firmware && g.recipe == "host")
        #expect(first.plan.leftOut.contains { $0.pattern == "/srv/secret" && $0.why == "--exclude" })
        #expect(first.plan.bytesToCopy > 100_000_000, "\(first.plan.bytesToCopy)")
        #expect(g.expectedFailures == ["smartmontools.service"])
        let notes = (g.adaptations ?? []).joined(separator: "\n")
        #expect(notes.contains("/etc/fstab") && notes.contains("ttyS1") && notes.contains("masked networking.service"), "\(notes)")
        // The copy holds the host's secrets: its owner's alone.
        let disk = try #require(g.disk)
        #expect(try FileManager.default.attributesOfItem(atPath: disk)[.posixPermissions] as? Int == 0o400)
        #expect(try FileManager.default.attributesOfItem(atPath: TestGuest.state.hostCaptures.path)[.posixPermissions] as? Int == 0o700)
        #expect(try HostTree.fingerprint(root) == before)

        let rel = try #require(g.kernelRelease)
        let p = try TestGuest.scenario("""
        machine: {image: host, memory: 768}
        timeout: 900
        steps:
          - name: the host's service runs in the copy
            wait_for_unit: rehearse-demo
            timeout: 300
          - run: uname -r
            expect: {stdout_equals: "\(rel)\\n"}
          - run: cat /etc/fstab
            expect: {stdout_contains: "LABEL=rehearse-root / ext4"}
          - run: systemctl is-enabled networking.service
            expect: {stdout_contains: masked, exit: 1}
          - name: what the capture leaves out is not in the copy
            succeed: test ! -e /srv/secret/key && test ! -e /var/cache/apt/archives/big_1.0_all.deb && test ! -e /tmp/scratch
          - run: systemctl is-failed smartmontools.service
            expect: {stdout_contains: failed}
        """, name: "host-capture")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.map { "\($0.name): \($0.outcome) \($0.message ?? "")" })")
        #expect(r.boots.first?.digest == g.digest)

        // Unchanged: the same generation, and almost nothing copied.
        let second = try await offload { try capture.run(state: TestGuest.state) }
        // For the record (never asserted): what the two captures cost on this machine.
        print(String(format: "capture of the test tree: %d files, %lld bytes; first %.1f s (copy %.1f, disk %.1f), disk %lld bytes; again unchanged %.1f s",
                     first.plan.files, first.plan.bytes, first.copySeconds + first.diskSeconds, first.copySeconds, first.diskSeconds, g.size,
                     second.copySeconds + second.diskSeconds))
        #expect(second.reused)
        #expect(second.generation.digest == g.digest)
        #expect(second.plan.bytesToCopy * 100 < second.plan.bytes, "\(second.plan.bytesToCopy) of \(second.plan.bytes)")
        #expect(try HostTree.fingerprint(root) == before)
    }

    @Test func aTreeThatIsNotASystemIsRefusedInOneLine() async throws {
        let root = TestGuest.runs.appendingPathComponent("not-a-host-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root.appendingPathComponent("etc"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let run = try CommandLineTests.start(["host", "capture", "--root", root.path, "--name", "nothing"])
        #expect(await run.wait() == 2)
        #expect(run.err.contains("its /sbin/init is not systemd"), "\(run.err)")
        #expect(run.err.split(separator: "\n").count == 1, "\(run.err)")
        #expect(!FileManager.default.fileExists(atPath: TestGuest.state.hostCaptures.appendingPathComponent("nothing").path), "a refused capture leaves nothing")
        let missing = try CommandLineTests.start(["host", "capture", "--root", root.path + "/nope"])
        #expect(await missing.wait() == 2)
        #expect(missing.err.contains("no such directory"), "\(missing.err)")
    }
}
