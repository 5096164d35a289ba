import Foundation
import Testing
@testable import Rehearsal

/// A real Debian 12 guest with systemd, booted under TCG from a
/// copy-on-write overlay of the `debian` image's base disk (about 20 s a boot).
@Suite(.serialized) struct DebianGuestTests {
    @Test func systemdBootsAndTheBaseDiskIsNeverWritten() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: debian, memory: 512}
        timeout: 600
        steps:
          - succeed: test -d /run/systemd/system
          - run: cat /etc/os-release
            expect: {stdout_contains: VERSION_CODENAME=bookworm}
          - wait_until_succeeds: systemctl is-system-running | grep -Eq 'running|degraded'
            timeout: 180
          - name: the guest writes to its disk
            succeed: dd if=/dev/urandom of=/root/written bs=1M count=8 status=none && sync
          - succeed: echo kept > /root/synced && sync
          - crash
          - name: what was synced survives a power cut
            run: cat /root/synced
            expect: {stdout_equals: "kept\\n"}
          - succeed: systemd-run --unit=rehearse-good sleep 600
          - wait_for_unit: rehearse-good
            timeout: 60
          - succeed: systemd-run --no-block -p Type=oneshot --unit=rehearse-bad sh -c 'sleep 2; echo giving up; exit 3'
          - wait_for_unit: rehearse-bad
            timeout: 120
          - succeed: "true"
        """, name: "debian")
        let image = try await TestGuest.runner.generation(try #require(p.machineGeneration))
        let base = try #require(image.disk)
        let before = try TestGuest.fingerprint([base])
        let r = await TestGuest.runner.run(p)
        // Everything passes up to the unit that fails, which fails its step at once, with its journal.
        #expect(r.steps.prefix(9).allSatisfy { $0.outcome == .passed }, "\(r.message ?? "")")
        let bad = r.steps[10]
        #expect(bad.outcome == .failed)
        #expect(bad.message == "rehearse-bad.service failed")
        #expect(bad.stdout?.contains("giving up") == true, "\(bad.stdout ?? "")")
        // The message is the unit's failure, not the step's timeout: the wait ended when the unit failed.
        #expect(r.steps[11].outcome == .skipped)
        #expect(try TestGuest.fingerprint([base]) == before)
        // The overlay the guest wrote to is gone with the machine.
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("disk-overlay.qcow2").path))
        let xml = try String(contentsOf: dir.appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("disk-overlay.qcow2") && !xml.contains("<source file='\(base)'"))
    }

    /// The steps of a service that is up at its `wait_for_unit` and dies seconds later.
    static let unitThatDies = """
      - succeed: systemd-run --unit=rehearse-dies sh -c 'sleep 3; echo dying; exit 4'
        ALLOW
      - wait_for_unit: rehearse-dies
      - wait_until_succeeds: systemctl is-failed --quiet rehearse-dies
        timeout: 60
    """

    /// A failure nobody asserted fails the scenario at its end. (A step that
    /// says it is expected to break the unit is in the next test.)
    @Test func aUnitThatDiesAfterItsWaitFailsTheScenarioAtTheEnd() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: debian, memory: 512}
        timeout: 600
        steps:
        \(Self.unitThatDies.replacingOccurrences(of: "ALLOW", with: ""))
          - succeed: "true"
        """, name: "dies")
        let dies = await TestGuest.runner.run(p)
        #expect(dies.outcome == .failed, "\(dies.message ?? "")")
        #expect(dies.steps.prefix(4).allSatisfy { $0.outcome == .passed }, "every step passed")
        let end = try #require(dies.steps.count == 5 ? dies.steps[4] : nil, "\(dies.steps.map(\.name))")
        #expect(end.name == "no unit failed during the scenario" && end.outcome == .failed)
        #expect(end.message == "at the end of the scenario: a unit failed: rehearse-dies.service", "\(end.message ?? "")")
        #expect(end.stdout?.contains("dying") == true, "its journal is the evidence: \(end.stdout ?? "")")
        #expect(dies.message?.hasPrefix("at the end of the scenario: a unit failed: rehearse-dies.service") == true, "\(dies.message ?? "")")
        let dir = URL(fileURLWithPath: try #require(dies.runDirectory))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("journal.log").path), "diagnostics were collected")
    }

    @Test(arguments: [false, true])
    func aUnitThatFailsAtBootFailsTheRebootUnlessAllowed(allowed: Bool) async throws {
        let p = try TestGuest.scenario("""
        machine: {image: debian, memory: 512}
        timeout: 600
        \(allowed ? "boot_check: {allow_failed: [broken]}" : "")
        steps:
          - name: install a unit that fails at every boot
            succeed: |
              printf '[Service]\\nType=oneshot\\nExecStart=/bin/false\\n[Install]\\nWantedBy=multi-user.target\\n' > /etc/systemd/system/broken.service
              systemctl enable broken.service
          - reboot
          - succeed: "true"
        \(allowed ? Self.unitThatDies.replacingOccurrences(of: "ALLOW", with: "allow_failed: [rehearse-dies]") : "")
        """, name: "broken-unit")
        let r = await TestGuest.runner.run(p)
        if allowed {
            #expect(r.outcome == .passed, "\(r.message ?? "")")
            // The unit that died was let be by the end check: its step said so.
            #expect(r.steps.count == 6 && r.steps.allSatisfy { $0.outcome == .passed }, "\(r.steps.map(\.name))")
        } else {
            #expect(r.outcome == .failed)
            #expect(r.steps[1].message == "after boot: a unit failed: broken.service", "\(r.steps[1].message ?? "")")
            #expect(r.steps[2].outcome == .skipped)
            // The failure's evidence is kept in the run directory.
            let dir = URL(fileURLWithPath: try #require(r.runDirectory))
            let failed = try String(contentsOf: dir.appendingPathComponent("failed-units.txt"), encoding: .utf8)
            #expect(failed.contains("broken.service"))
            let journal = try String(contentsOf: dir.appendingPathComponent("journal.log"), encoding: .utf8)
            #expect(journal.contains("broken.service"))
            // Both boots' journals: the one that installed the unit and the one where it failed.
            let before = try String(contentsOf: dir.appendingPathComponent("journal-boot-1.log"), encoding: .utf8)
            #expect(before.contains("Reached target") || before.contains("Started"))
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("journal-boot0.log").path))
        }
    }

    /// compare's probes read what systemctl prints on the channel, a tty: a
    /// narrow one must not shorten unit names (they were ellipsized).
    @Test func probesDoNotDependOnTheChannelsWidth() async throws {
        _ = TestGuest.state
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let r = await TestGuest.runner.run("narrow-channel") { s in
            let m = try await s.machine(MachineDeclaration(.generation("debian"), memoryMiB: 512))
            try await m.succeed("stty -F /proc/self/fd/1 cols 24 && stty -F /proc/self/fd/1 size")
            let snapshot = try await Probes.snapshot(of: m.machine, deadline: .after(seconds: 300))
            #expect(snapshot.units.count > 50, "\(snapshot.units.count) units")
            #expect(!snapshot.units.keys.contains { $0.contains("…") || $0.contains("...") }, "\(snapshot.units.keys.sorted())")
            #expect(snapshot.units["systemd-ask-password-console.path"] != nil && snapshot.units["first-boot-complete.target"] != nil)
        }
        #expect(r.outcome == .passed, "\(r.message ?? "")")
    }
}
