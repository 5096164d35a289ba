import Foundation
import Testing
@testable import Rehearsal

/// cloud-init's NoCloud seed: the scenario keys, and the volume it makes
/// (what cloud-init's ds-identify looks for: label `cidata`, `user-data` and
/// `meta-data` at its root). Booting one: CandidateFormTests.
@Suite struct CloudInitSeedTests {
    @Test func cloudInitFilesAreChecked() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ci-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        try "#cloud-config\n".write(to: root.appendingPathComponent("user-data"), atomically: true, encoding: .utf8)
        let file = root.appendingPathComponent("s.yaml").path
        let s = try ScenarioParser.parse(text: "machine:\n  generation: debian-cloud\n  cloud_init: {user_data: user-data}\nsteps: []\n", file: file)
        #expect(s.machine.cloudInit == CloudInitSeed.Files(userData: root.appendingPathComponent("user-data").path))
        for (yaml, line) in [("  cloud_init: {user_data: nope}\n", 3), ("  cloud_init: {meta_data: user-data}\n", 3),
                             ("  cloud_init: {user_data: user-data, vendor: x}\n", 3), ("  cloud_init: user-data\n", 3)] {
            do {
                _ = try ScenarioParser.parse(text: "machine:\n  generation: debian-cloud\n" + yaml + "steps: []\n", file: file)
                Issue.record("parsed: \(yaml)")
            } catch let e as RehearsalError {
                #expect(e.line == line, "\(yaml): \(e.message)")
            }
        }
    }

    @Test func theSeedIsAnISOLabelledCidataWithTheFilesAtItsRoot() throws {
        let fm = FileManager.default
        let dir = fm.temporaryDirectory.appendingPathComponent("seed-\(UUID().uuidString)")
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: dir) }
        let user = "#cloud-config\nruncmd: [[touch, /x]]\n"
        try user.write(to: dir.appendingPathComponent("u"), atomically: true, encoding: .utf8)
        let seed = try CloudInitSeed.make(from: .init(userData: dir.appendingPathComponent("u").path), in: dir)
        let info = try HostCommand.run(["isoinfo", "-d", "-i", seed.image.path])
        #expect(info.contains("Volume id: cidata"), "\(info)")
        #expect(try HostCommand.run(["isoinfo", "-R", "-i", seed.image.path, "-x", "/user-data"]) == user)
        // No meta-data given: an instance id derived from the user-data.
        let meta = try HostCommand.run(["isoinfo", "-R", "-i", seed.image.path, "-x", "/meta-data"])
        #expect(meta == "instance-id: iid-rehearse-\(SHA256.hex(Data(user.utf8)).prefix(12))\n")
        let vendor = try HostCommand.run(["isoinfo", "-R", "-i", seed.image.path, "-x", "/vendor-data"])
        #expect(vendor.hasPrefix("#cloud-config\n") && vendor.contains("bootcmd:") && vendor.contains("ttyS1"))
        #expect(!fm.fileExists(atPath: dir.appendingPathComponent("cidata").path), "the staging directory is gone")
        seed.remove()
        #expect(!fm.fileExists(atPath: seed.image.path))
    }
}
