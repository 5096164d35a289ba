import Foundation

/// Which scenarios a run takes: `--shard I/N` splits the scenario files
/// between N CI jobs, and `--filter PATTERN` keeps the scenarios whose name,
/// or the name of one of whose steps, matches a shell pattern.
///
///     rehearse run Scenarios/*.yaml --shard 2/3          # job 2 of 3
///     rehearse run Scenarios/*.yaml --filter 'upgrade-*'
///
/// The split depends only on the set of files: they are sorted by path and
/// dealt out in turn, so N jobs given the same files (in any order) run each
/// file exactly once between them.
public struct ScenarioSelection: Sendable, Equatable {
    /// Shell patterns (`*`, `?`, `[…]`); a scenario is kept when any matches.
    public var patterns: [String]
    public var shard: Shard?

    public init(patterns: [String] = [], shard: Shard? = nil) {
        self.patterns = patterns
        self.shard = shard
    }

    /// Job `index` (1-based) of `count`.
    public struct Shard: Sendable, Equatable, CustomStringConvertible {
        public let index: Int
        public let count: Int

        public init(index: Int, count: Int) throws {
            guard count >= 1, (1...count).contains(index) else {
                throw RehearsalError(.badScenario, "a shard is I/N with 1 ≤ I ≤ N (got \(index)/\(count))")
            }
            self.index = index
            self.count = count
        }

        /// Parses `I/N`.
        public init(parsing text: String) throws {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
                throw RehearsalError(.badScenario, "a shard is I/N, for example 2/3 (got `\(text)`)")
            }
            try self.init(index: i, count: n)
        }

        public var description: String { "\(index)/\(count)" }
    }

    /// The files this shard runs, in the order given.
    public func files(_ files: [String]) -> [String] {
        guard let shard else { return files }
        let sorted = Array(Set(files.map(Self.key))).sorted()
        let mine = Set(sorted.enumerated().filter { $0.offset % shard.count == shard.index - 1 }.map(\.element))
        var seen = Set<String>()
        return files.filter { mine.contains(Self.key($0)) && seen.insert(Self.key($0)).inserted }
    }

    /// Whether `scenario` is kept by the patterns (all are, with none).
    public func matches(_ scenario: Scenario) -> Bool {
        guard !patterns.isEmpty else { return true }
        let names = [scenario.name] + scenario.steps.map(\.name)
        return patterns.contains { p in names.contains { fnmatch(p, $0, 0) == 0 } }
    }

    /// One spelling per file, so that `./a.yaml` and `a.yaml` are one file.
    static func key(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
}
