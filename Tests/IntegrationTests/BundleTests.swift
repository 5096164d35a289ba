import Foundation
import Testing
@testable import Rehearsal

/// Bundles and `rehearse replay`, through the executable: a failing tiny
/// scenario leaves one archive with its evidence and what a replay needs;
/// the replay fails the same way; a bundle naming a generation that is not
/// here is refused before anything boots.
@Suite(.serialized) struct BundleTests {
    static func results(_ file: URL) throws -> [ScenarioResult] {
        let data = try Data(contentsOf: file)
        return try JSONCoding.decoder.decode(ReportWriter.RunReport.self, from: data).scenarios
    }

    @Test func aFailureLeavesABundleAndItsReplayFailsTheSameWay() async throws {
        let p = try TestGuest.scenario("""
        name: bundled failure
        machine: {image: tiny}
        steps:
          - succeed: echo evidence-$((6*7)) > /tmp/e && cat /tmp/e
          - name: the failing step
            run: echo out-$((6*7)); exit 3
            expect: {exit: 0}
        """, name: "bundle")
        let dir = TestGuest.runs.appendingPathComponent("bundle-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let first = try CommandLineTests.start(["run", p.scenario.file, "--json", dir.appendingPathComponent("first.json").path])
        #expect(await first.wait() == 1, "\(first.out)\n\(first.err)")
        let r = try #require(try Self.results(dir.appendingPathComponent("first.json")).first)
        let bundle = try #require(r.bundle, "a failed scenario names its bundle")
        #expect(first.out.contains("bundle: \(bundle)"))
        let listing = try await TestGuest.host(["tar", "-tzf", bundle]).split(separator: "\n").map { String($0) }
        for f in ["./bundle.json", "./scenario.yaml", "./run/console.log", "./run/channel.log", "./run/channel-trace.log",
                  "./run/result.json", "./run/domain.xml"] {
            #expect(listing.contains(f), "\(f) in \(listing)")
        }
        #expect(!listing.contains { $0.hasSuffix(".qcow2") || $0.hasSuffix(".save") || $0.hasSuffix(".img") }, "\(listing)")
        // What is inside is what ran: the generation's digest, the scenario's text, both directions of the channel.
        let unpacked = dir.appendingPathComponent("unpacked")
        try FileManager.default.createDirectory(at: unpacked, withIntermediateDirectories: true)
        _ = try await TestGuest.host(["tar", "-xzf", bundle, "-C", unpacked.path])
        let b = try JSONCoding.decoder.decode(Bundle.self, from: Data(contentsOf: unpacked.appendingPathComponent("bundle.json")))
        #expect(b.generations == [Bundle.Pin(name: "tiny", digest: try #require(r.imageDigest))])
        #expect(b.outcome == .failed && b.file == p.scenario.file && b.host.libvirt != "unknown")
        #expect(try String(contentsOf: unpacked.appendingPathComponent("scenario.yaml"), encoding: .utf8) == String(contentsOfFile: p.scenario.file, encoding: .utf8))
        let trace = try String(contentsOf: unpacked.appendingPathComponent("run/channel-trace.log"), encoding: .utf8)
        // One line per read: what the guest sent is the `<` lines joined, however the reads fell.
        let received = trace.split(separator: "\n").compactMap { line in line.range(of: "] < ").map { line[$0.upperBound...] } }.joined()
        #expect(trace.contains("] > ") && received.contains("out-42"), "\(trace.prefix(400))")
        // The replay: same scenario, same generation, the same failure, and a bundle of its own.
        let again = try CommandLineTests.start(["replay", bundle, "--json", dir.appendingPathComponent("again.json").path])
        #expect(await again.wait() == 1, "\(again.out)\n\(again.err)")
        #expect(again.out.contains("replaying bundled failure"), "\(again.out)")
        let a = try #require(try Self.results(dir.appendingPathComponent("again.json")).first)
        #expect(a.imageDigest == r.imageDigest)
        #expect(a.steps.map(\.outcome) == r.steps.map(\.outcome))
        #expect(a.steps[1].message == r.steps[1].message && a.steps[1].stdout == "out-42\n", "\(a.steps[1])")
        #expect(a.bundle != nil && a.bundle != bundle)
        // A bundle whose generation is not here: one line, exit 2, nothing booted.
        var pinned = b
        pinned.generations = [Bundle.Pin(name: "tiny", digest: String(repeating: "ab", count: 32))]
        try JSONCoding.encoder.encode(pinned).write(to: unpacked.appendingPathComponent("bundle.json"))
        let tampered = dir.appendingPathComponent("tampered.tar.gz")
        _ = try await TestGuest.host(["tar", "-czf", tampered.path, "-C", unpacked.path, "."])
        let refused = try CommandLineTests.start(["replay", tampered.path])
        #expect(await refused.wait() == 2, "\(refused.out)\n\(refused.err)")
        #expect(refused.err.split(separator: "\n").count == 1 && refused.err.contains("tiny abababababab is not built here"), "\(refused.err)")
        #expect(!refused.out.contains("booted"), "\(refused.out)")
        // Not a bundle at all.
        let notOne = try CommandLineTests.start(["replay", p.scenario.file])
        #expect(await notOne.wait() == 2)
        #expect(notOne.err.contains("not a bundle"), "\(notOne.err)")
    }
}
