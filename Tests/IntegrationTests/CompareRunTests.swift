import Foundation
import Testing
@testable import Rehearsal

/// Real comparisons of two Debian generations booted side by side, and the
/// HTML report as headless Chromium renders it.
@Suite(.serialized) struct CompareRunTests {
    static func options(_ old: String, _ new: String) throws -> CompareRunner.Options {
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let scenario = try Runner.prepare(files: [TestGuest.repo.appendingPathComponent("Scenarios/compare-demo.yaml").path])[0]
        let paths = ImageRecipe.searchPaths(scenarioFile: scenario.scenario.file)
        let refs = try [old, new].map { n in
            let (recipe, g) = try ImageRecipe.resolve(n, searchPaths: paths)
            return Runner.GenerationReference(recipe: recipe, name: g)
        }
        return CompareRunner.Options(old: .generation(refs[0]), new: .generation(refs[1]), scenario: scenario)
    }

    @Test func aGenerationComparedWithItselfHasNoDifferences() async throws {
        var o = try Self.options("debian", "debian")
        o.scenario = nil
        o.boots = 2
        let c = try await CompareRunner(runner: TestGuest.runner).compare(o)
        // A plain Bool, so that a failure prints the differences, not the whole comparison.
        let differs = c.hasDifferences
        #expect(!differs, "packages \(c.packages), units \(c.units), ports +\(c.portsOpened) -\(c.portsClosed), etc \(c.etc), notes \(c.notes)")
        #expect(c.old.snapshot.packages["dpkg"]?.count ?? 0 > 100, "the probes saw the system")
        #expect(c.old.snapshot.etc.count > 100 && c.old.snapshot.units.count > 50, "\(c.old.snapshot.skipped)")
        #expect(c.old.bootSeconds.count == 2 && c.new.bootSeconds.count == 2)
        #expect(c.bootTime.noise >= 0 && c.bootTime.oldMin <= c.bootTime.oldMedian)
    }

    @Test func aGoodUpgradeShowsThePackageChangeAndNoRegression() async throws {
        let c = try await CompareRunner(runner: TestGuest.runner).compare(try Self.options("debian", "debian-demo2"))
        #expect(c.regressions.isEmpty, "\(c.regressions)")
        #expect(c.packages == [Comparison.PackageChange(manager: "dpkg", name: "rehearse-demo", old: "1.0", new: "2.0", kind: .upgraded)])
        #expect(c.portsOpened == ["tcp 127.0.0.1:8081 rehearse-demo"], "\(c.portsOpened)")
        #expect(c.portsClosed.isEmpty && c.etc.isEmpty, "\(c.portsClosed) \(c.etc)")
        #expect(c.assertions.allSatisfy { $0.kind == .passes })
        #expect(c.old.snapshot.bootPhases["kernel"] != nil, "systemd's boot phases are read")
    }

    @Test func aBrokenUpgradeIsARegressionAndTheReportShowsIt() async throws {
        let c = try await CompareRunner(runner: TestGuest.runner).compare(try Self.options("debian", "debian-demo3"))
        #expect(c.regressions.count == 2, "\(c.regressions)")
        #expect(c.assertions.first?.kind == .regression)
        #expect(c.units.first?.name == "rehearse-demo.service" && c.units.first?.kind == .newlyFailing)
        // The two sides are rehearsed side by side: each began before the other's shell answered.
        let (oldStart, oldReady) = (try #require(c.old.started), try #require(c.old.ready))
        let (newStart, newReady) = (try #require(c.new.started), try #require(c.new.ready))
        #expect(oldStart < newReady && newStart < oldReady, "old \(oldStart)…\(oldReady), new \(newStart)…\(newReady)")

        let dir = URL(fileURLWithPath: try #require(c.new.runDirectory))
        let page = dir.appendingPathComponent("compare.html")
        try CompareReport.html(c).write(to: page, atomically: true, encoding: .utf8)
        let browser = try TestGuest.Browser()
        defer { browser.close() }
        // With JavaScript, as people see it: the regression at the top, the package change in its table.
        let dom = try await browser.dump(page)
        let regressions = try #require(dom.range(of: "id=\"regressions\""), "\(dom.prefix(400))")
        #expect(dom[regressions.lowerBound...].contains("unit rehearse-demo.service fails on new"))
        #expect(dom.contains("<td>rehearse-demo</td><td>1.0</td><td>3.0</td>"))
        #expect(dom.contains("class=\"js\""), "the script ran")
        // Without JavaScript: the same page with its one script removed (what a browser with
        // scripts off runs) renders the same content, with no filter boxes.
        let source = try String(contentsOf: page, encoding: .utf8)
        let scriptStart = try #require(source.range(of: "<script>")), scriptEnd = try #require(source.range(of: "</script>"))
        let noScript = dir.appendingPathComponent("compare-no-javascript.html")
        try source.replacingCharacters(in: scriptStart.lowerBound..<scriptEnd.upperBound, with: "").write(to: noScript, atomically: true, encoding: .utf8)
        let plain = try await browser.dump(noScript)
        #expect(plain.contains("unit rehearse-demo.service fails on new") && plain.contains("<td>rehearse-demo</td><td>1.0</td><td>3.0</td>"))
        #expect(!plain.contains("class=\"js\""))
        _ = try await browser.screenshot(noScript, to: dir.appendingPathComponent("compare-no-javascript.png"))
        let png = try await browser.screenshot(page, to: dir.appendingPathComponent("compare.png"))
        #expect(png.count > 10_000 && png.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    }
}
