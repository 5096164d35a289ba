import Foundation
import Testing
@testable import Rehearsal

/// `--shard I/N` and `--filter PATTERN`.
struct ScenarioSelectionTests {
    static let files = (1...11).map { "Scenarios/s\($0).yaml" }

    @Test(arguments: [1, 2, 3, 4, 11, 15])
    func shardsTogetherRunEveryFileExactlyOnce(count: Int) throws {
        var seen: [String] = []
        for i in 1...count {
            // Each job may be given the files in its own order.
            let given = i % 2 == 0 ? Self.files.reversed() : Self.files
            seen += ScenarioSelection(shard: try .init(index: i, count: count)).files(given)
        }
        #expect(seen.sorted() == Self.files.sorted(), "every file once, none twice")
    }

    @Test func aShardKeepsTheOrderGivenAndOneSpellingOfAFile() throws {
        let s = ScenarioSelection(shard: try .init(parsing: "1/1"))
        #expect(s.files(["b.yaml", "./a.yaml", "a.yaml"]) == ["b.yaml", "./a.yaml"])
        let half = ScenarioSelection(shard: try .init(parsing: "2/2"))
        #expect(half.files(["c.yaml", "a.yaml", "b.yaml"]) == ["b.yaml"])
    }

    @Test(arguments: ["0/3", "4/3", "1/0", "2", "a/b", "1/2/3", ""])
    func aBadShardIsRefused(_ text: String) {
        let e = #expect(throws: RehearsalError.self) { try ScenarioSelection.Shard(parsing: text) }
        #expect(e?.exitStatus == 2)
    }

    @Test func aFilterMatchesTheScenarioOrOneOfItsSteps() throws {
        let s = try ScenarioParser.parse(text: """
        name: upgrade-app
        machine: {image: tiny}
        steps:
          - name: install 2.0
            succeed: "true"
          - succeed: uname -r
        """, file: "s.yaml")
        #expect(ScenarioSelection().matches(s))
        #expect(ScenarioSelection(patterns: ["upgrade-*"]).matches(s))
        #expect(ScenarioSelection(patterns: ["install ?.0"]).matches(s))
        #expect(ScenarioSelection(patterns: ["succeed: uname*"]).matches(s), "a step's default name: its kind and command")
        #expect(!ScenarioSelection(patterns: ["kernel-*", "upgrade"]).matches(s))
        #expect(ScenarioSelection(patterns: ["kernel-*", "*app"]).matches(s))
    }
}
