import Foundation
import Testing
@testable import Rehearsal

/// A real Debian 12 guest with systemd, booted under TCG from a
/// copy-on-write overlay of the `debian` image's base disk (about 20 s a boot).
@Suite(.serialized) struct DebianGuestTests {
    @Test func systemdBootsAndTheBaseDiskIsNeverWritten() throws {
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
        """, name: "debian")
        let image = try TestGuest.runner.image(p.recipe)
        let base = try #require(image.disk)
        func fingerprint() throws -> String {
            let a = try FileManager.default.attributesOfItem(atPath: base)
            let sum = try HostCommand.run(["sha256sum", base]).split(separator: " ").first.map(String.init) ?? ""
            return "\(sum) \(a[.size]!) \(a[.modificationDate]!) \(a[.posixPermissions]!)"
        }
        let before = try fingerprint()
        let r = TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect(try fingerprint() == before)
        // The overlay the guest wrote to is gone with the machine.
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("disk-overlay.qcow2").path))
        let xml = try String(contentsOf: dir.appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("disk-overlay.qcow2") && !xml.contains("<source file='\(base)'"))
    }
}
