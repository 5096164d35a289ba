import Foundation
import Testing
@testable import Rehearsal

/// Candidates that are not generations a recipe built: any disk image with
/// its own bootloader, and an Ignition config handed over through fw_cfg.
@Suite(.serialized) struct CandidateFormTests {
    @Test func anyDiskImageBootsByFirmwareAndSeesItsIgnitionConfig() throws {
        // A disk with its own bootloader: the debian recipe's partitioned disk with GRUB.
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let (recipe, name) = try ImageRecipe.resolve("debian-firmware", searchPaths: ImageRecipe.searchPaths(scenarioFile: nil))
        let disk = try #require(try TestGuest.runner.generation(.init(recipe: recipe, name: name)).disk)
        let before = try TestGuest.fingerprint([disk])
        let dir = TestGuest.runs.appendingPathComponent("ignition-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = dir.appendingPathComponent("config.ign")
        try #"{"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA rehearse-\#(UUID().uuidString)"]}]}}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let sum = String(try HostCommand.run(["sha256sum", config.path]).prefix(64))
        let p = try TestGuest.scenario("""
        machine: {disk: \(disk), format: qcow2, ignition: \(config.path), memory: 512}
        timeout: 300
        steps:
          - succeed: modprobe qemu_fw_cfg
          - name: the guest reads the config back from fw_cfg, byte for byte
            run: sha256sum < /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw
            expect: {stdout_contains: \(sum)}
          - name: it booted from its own bootloader
            run: cat /proc/cmdline
            expect: {stdout_contains: "BOOT_IMAGE=/boot/vmlinuz"}
        """, name: "disk-image")
        #expect(p.machineGeneration == nil)
        let r = TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.compactMap(\.message))")
        #expect(r.boots.first?.generation == "disk.qcow2")
        #expect(r.imageDigest?.count == 64)
        #expect(try TestGuest.fingerprint([disk]) == before, "the disk image is never written")
        let xml = try String(contentsOf: URL(fileURLWithPath: try #require(r.runDirectory)).appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("<entry name='opt/com.coreos/config' file='") && xml.contains("<boot dev='hd'/>"))
    }
}
