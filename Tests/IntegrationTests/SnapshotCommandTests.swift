import Foundation
import Testing
@testable import Rehearsal
import RehearsalProgram

/// `rehearse snapshots` (table, `--json`, `--verbose`) and `rehearse clean
/// --snapshots` through the executable, in a state directory of each test's
/// own that shares only the built images (so clean removes no state another
/// test uses): a run keeps its machine's state, the next restores it, the
/// listing shows it as it is on disk, clean removes it and the run after
/// boots cold again.
@Suite(.serialized) struct SnapshotCommandTests {
    /// A fresh state directory (its name short: libvirt's sockets live under it).
    static func stateDirectory() throws -> URL {
        let dir = TestGuest.runs.appendingPathComponent("s-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// `rehearse ARGS` with `REHEARSE_STATE_DIR=state` and the suite's image cache.
    static func start(_ state: URL, _ args: [String]) throws -> CommandLineTests.Run {
        try CommandLineTests.start(args, environment: [
            "REHEARSE_STATE_DIR": state.path, "REHEARSE_IMAGE_CACHE": TestGuest.state.images.path,
            "REHEARSE_IMAGES": TestGuest.repo.appendingPathComponent("Images").path,
        ])
    }

    /// `rehearse run FILE --json` in `state`: its one scenario's result and what it printed.
    static func run(_ state: URL, _ file: String) async throws -> (result: ScenarioResult, out: String) {
        let json = TestGuest.runs.appendingPathComponent("snap-\(UUID().uuidString.prefix(6)).json")
        let r = try start(state, ["run", file, "--json", json.path, "--run-dir", TestGuest.runs.path])
        #expect(await r.wait() == 0, "\(r.out)\n\(r.err)")
        let report = try JSONCoding.decoder.decode(ReportWriter.RunReport.self, from: Data(contentsOf: json))
        return (try #require(report.scenarios.first), r.out)
    }

    /// `rehearse snapshots ARGS` in `state`: exit 0, its output.
    static func snapshots(_ state: URL, _ args: [String] = []) async throws -> String {
        let r = try start(state, ["snapshots"] + args)
        #expect(await r.wait(60) == 0, "\(r.out)\n\(r.err)")
        return r.out
    }

    static func bytes(_ u: URL) -> Int64? { (try? FileManager.default.attributesOfItem(atPath: u.path))?[.size] as? Int64 }

    @Test func aKeptStateIsListedAsOnDiskRestoredAndCleanedAway() async throws {
        let state = try Self.stateDirectory(), saved = state.appendingPathComponent("saved")
        let p = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: \"true\"\n", name: "snapshots")
        let none = try await Self.snapshots(state, ["--json"])
        #expect(try JSONCoding.decoder.decode([SavedState].self, from: Data(none.utf8)).isEmpty, "\(none)")
        // The first run keeps its machine's state; the second restores it.
        let (first, _) = try await Self.run(state, p.scenario.file)
        let (second, secondOut) = try await Self.run(state, p.scenario.file)
        let listed = try await Self.snapshots(state, ["--json"])
        let all = try JSONCoding.decoder.decode([SavedState].self, from: Data(listed.utf8))
        #expect(all.count == 1, "one state, made once: \(all.map(\.id))")
        let k = try #require(all.first)
        #expect(first.restoredFrom == nil && first.start == "booted cold and kept its state as \(k.id)", "\(first.start ?? "")")
        #expect(second.restoredFrom == k.id && second.boots.first?.cause == "restore \(k.id)", "\(second.start ?? "")")
        #expect(second.start?.hasPrefix("restored from saved state \(k.id) (made ") == true, "\(second.start ?? "")")
        #expect(secondOut.contains("restored from saved state \(k.id)"), "\(secondOut)")

        // The record is the machine's and the files on disk.
        #expect(k.generation == "tiny" && k.generation == first.image && k.generationDigest == first.imageDigest)
        #expect(k.memoryMiB == p.scenario.machine.memoryMiB && k.memoryMiB == MachineSpec.defaultMemoryMiB && k.cpus == p.scenario.machine.cpus)
        let dir = saved.appendingPathComponent(k.id)
        #expect(Self.bytes(dir.appendingPathComponent("state.save")) == k.stateBytes && k.stateBytes > 0)
        // tiny boots from its initrd: no disk, so the state keeps none.
        #expect(k.diskBytes == nil && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("disk.qcow2").path))
        #expect(try SavedStateStore.digest(dir.appendingPathComponent("state.save").path) == k.stateDigest)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("record.json").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("console.txt").path))
        #expect(String(SHA256.hex(Data(k.inputs.joined(separator: "\n").utf8)).prefix(24)) == k.id, "the id is the digest of its inputs")
        #expect(k.inputs.contains("generation tiny \(k.generationDigest)"), "\(k.inputs)")

        // The table: a header, one row of the record's values, the total.
        let table = try await Self.snapshots(state)
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(table)")
        #expect(lines.first?.split(separator: /\s\s+/).map(String.init) == ["ID", "GENERATION", "MEMORY", "CPUS", "SIZE", "COLD BOOT", "MADE"], "\(table)")
        let row = try #require(lines.first { $0.hasPrefix(k.id + " ") }, "\(table)")
        #expect(row.split(separator: /\s\s+/).map(String.init) == [k.id, "tiny \(k.generationDigest.prefix(12))", "\(k.memoryMiB) MiB", "\(k.cpus)",
                                                                Formatting.size(k.totalBytes), String(format: "%.1f s", k.coldBootSeconds), Formatting.date(k.createdAt)], "\(row)")
        #expect(lines.last == "1 saved state(s), \(Formatting.size(k.totalBytes)) in \(saved.path)", "\(table)")
        #expect(!table.contains("\(k.id):"))

        // --verbose adds the identity's inputs under the table.
        let verbose = try await Self.snapshots(state, ["--verbose"])
        #expect(verbose.hasPrefix(lines[0] + "\n" + row + "\n"), "\(verbose)")
        #expect(verbose.contains("\n\(k.id):\n" + k.inputs.map { "  \($0)" }.joined(separator: "\n") + "\n"), "\(verbose)")

        // clean --snapshots removes it (nothing uses it now) and says so.
        let c = try Self.start(state, ["clean", "--snapshots"])
        #expect(await c.wait(120) == 0, "\(c.out)\n\(c.err)")
        #expect(c.out.contains("removed 1 saved state(s), \(Formatting.size(k.totalBytes))\n") && !c.out.contains("kept "), "\(c.out)")
        #expect(!FileManager.default.fileExists(atPath: dir.path))
        let empty = try await Self.snapshots(state)
        #expect(empty == "no saved states yet: the first run of a scenario keeps its machine's state\n", "\(empty)")

        // The next run boots cold and keeps the same identity's state again.
        let (third, _) = try await Self.run(state, p.scenario.file)
        #expect(third.restoredFrom == nil && third.start == "booted cold and kept its state as \(k.id)", "\(third.start ?? "")")
        let c2 = try Self.start(state, ["clean", "--snapshots"])
        #expect(await c2.wait(120) == 0 && c2.out.contains("removed 1 saved state(s)"), "\(c2.out)\n\(c2.err)")
    }

    @Test func badUsageExitsWithTwo() async throws {
        let r = try Self.start(try Self.stateDirectory(), ["snapshots", "--nonsense"])
        #expect(await r.wait(60) == 2)
        // ArgumentParser's message, then its usage lines.
        #expect(r.err.split(separator: "\n").first?.hasPrefix("Error: Unknown option '--nonsense'") == true, "\(r.err)")
        #expect(r.err.contains("Usage: rehearse snapshots") && r.out.isEmpty, "\(r.err)")
    }
}
