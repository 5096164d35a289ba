import Foundation
import Testing
@testable import Rehearsal

/// Disk images given as files are checked before anything boots: their real
/// format must be the declared one and their first sector must be bootable.
/// Small images are made in a temporary directory with `qemu-img`.
@Suite struct DiskImageCheckTests {
    let dir: URL

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("rh-disk-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var noise = (0..<65_536).map { _ in UInt8.random(in: 0...255) }
        // No format's magic at the start, no boot signature at 510, whatever the dice say.
        noise.replaceSubrange(0..<4, with: Array("RAND".utf8))
        noise[510] = 0; noise[511] = 0
        try Data(noise).write(to: path("random.qcow2"))
        var boot = [UInt8](repeating: 0, count: 1 << 20)
        boot[510] = 0x55; boot[511] = 0xAA
        try Data(boot).write(to: path("boot.raw"))
        try HostCommand.run(["qemu-img", "create", "-q", "-f", "qcow2", path("empty.qcow2").path, "1M"])
        try HostCommand.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", path("boot.raw").path, path("boot.qcow2").path])
    }

    func path(_ name: String) -> URL { dir.appendingPathComponent(name) }

    func problem(_ name: String, declared: String?) -> RehearsalError? {
        do { try DiskImageCheck.check(path(name).path, declared: declared); return nil } catch let p as RehearsalError { return p } catch {
            Issue.record("unexpected error \(error)"); return nil
        }
    }

    @Test func randomBytesDeclaredQcow2AreNotAQcow2Image() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = try #require(problem("random.qcow2", declared: "qcow2"))
        #expect(p.description == "\(path("random.qcow2").path): not a qcow2 image (qemu-img sees raw)")
    }

    @Test func randomBytesAsRawHaveNoBootSector() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        for declared in ["raw", nil] {
            let p = try #require(problem("random.qcow2", declared: declared))
            #expect(p.description.hasPrefix("\(path("random.qcow2").path): no boot sector (no 0x55AA signature"))
            #expect(p.message.hasSuffix("nothing for the firmware to boot"))
        }
        // Smaller than a sector: nothing to boot either.
        try Data([1, 2, 3]).write(to: path("tiny.raw"))
        #expect(problem("tiny.raw", declared: "raw")?.message.hasPrefix("no boot sector") == true)
    }

    @Test func aRawImageWithTheSignatureIsBootable() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try DiskImageCheck.check(path("boot.raw").path, declared: "raw") == "raw")
        #expect(try DiskImageCheck.check(path("boot.raw").path, declared: nil) == "raw")
        #expect(problem("boot.raw", declared: "qcow2")?.message == "not a qcow2 image (qemu-img sees raw)")
    }

    @Test func aQcow2ImageIsReadAsTheGuestSeesIt() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        // Empty: its first guest sector is zeros, whatever the qcow2 header holds.
        #expect(problem("empty.qcow2", declared: "qcow2")?.message.hasPrefix("no boot sector") == true)
        #expect(try DiskImageCheck.check(path("boot.qcow2").path, declared: "qcow2") == "qcow2")
        #expect(try DiskImageCheck.check(path("boot.qcow2").path, declared: nil) == "qcow2")
        #expect(problem("boot.qcow2", declared: "raw")?.message == "not a raw image (qemu-img sees qcow2)")
    }

    @Test func checkingNeverModifiesTheImage() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let names = ["random.qcow2", "boot.raw", "empty.qcow2", "boot.qcow2"]
        func state() throws -> [(Data, Date?)] {
            try names.map { (try Data(contentsOf: path($0)), try FileManager.default.attributesOfItem(atPath: path($0).path)[.modificationDate] as? Date) }
        }
        let before = try state()
        Thread.sleep(forTimeInterval: 0.05)  // a write would now show in the mtime
        for n in names { for d in ["qcow2", "raw", nil] { _ = problem(n, declared: d) } }
        let after = try state()
        for (i, n) in names.enumerated() {
            #expect(before[i].0 == after[i].0, "\(n)'s bytes changed")
            #expect(before[i].1 == after[i].1, "\(n)'s mtime changed")
        }
    }

    @Test func aScenarioWithABadDiskFailsPrepareAtItsDiskLine() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        let scenario = path("bad.yaml").path
        try "name: bad\nmachine:\n  disk: random.qcow2\n  format: qcow2\nsteps: []\n".write(toFile: scenario, atomically: true, encoding: .utf8)
        let e = try #require(throws: RehearsalError.self) { try Runner.prepare(files: [scenario]) }
        #expect(e.description.hasPrefix("\(scenario):3: "))
        #expect(e.description.hasSuffix("\(path("random.qcow2").path): not a qcow2 image (qemu-img sees raw)"))
        // The same file as a gate's candidate: the candidate is named.
        let good = path("good.yaml").path
        try "machine: {generation: tiny}\nsteps: []\n".write(toFile: good, atomically: true, encoding: .utf8)
        let c = try #require(throws: RehearsalError.self) { try Runner.prepare(files: [good], generation: path("random.qcow2").path) }
        #expect(c.description.hasPrefix("\(path("random.qcow2").path): no boot sector"))
        // A bootable disk prepares.
        try "machine: {disk: boot.qcow2}\nsteps: []\n".write(toFile: good, atomically: true, encoding: .utf8)
        #expect(try Runner.prepare(files: [good]).first?.scenario.machine.system == .diskImage(path("boot.qcow2").path, format: nil))
    }

    @Test func compareAndBootPathsRefuseABadDiskToo() throws {
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: RehearsalError.self) { try Candidate.named(path("empty.qcow2").path, searchPaths: []) }
        guard case .files(.diskImage(let p, nil)) = try Candidate.named(path("boot.raw").path, searchPaths: []) else {
            Issue.record("a bootable image is not a disk image candidate"); return
        }
        #expect(p == path("boot.raw").path)
        #expect(throws: RehearsalError.self) { try Generation.of(.diskImage(path("random.qcow2").path, format: "qcow2")) }
        #expect(try Generation.of(.diskImage(path("boot.qcow2").path, format: nil)).diskFormat == nil)
        #expect(try Generation.of(.diskImage(path("boot.raw").path, format: "raw")).diskFormat == "raw")
    }
}
