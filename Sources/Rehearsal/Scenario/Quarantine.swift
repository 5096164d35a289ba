import Foundation
import Yams

/// Known failures, each with a reason, a link and an expiry date
/// (`run --quarantine FILE`). A failure an entry covers is reported as
/// quarantined and does not fail the run, until the entry's date has passed:
/// then it fails, saying the quarantine expired.
///
///     - scenario: "upgrade-*"          # a shell pattern on scenario names
///       step: "wait_for_unit: nginx*"  # optional: only failures at a matching step
///       reason: nginx 1.24 races its PID file on TCG
///       link: https://bugs.example.org/1234
///       until: 2027-01-31              # the last day it covers (UTC)
public struct Quarantine: Sendable {
    public struct Entry: Sendable, Codable, Equatable {
        public var scenario: String
        public var step: String?
        public var reason: String
        public var link: String?
        /// The last day covered, `YYYY-MM-DD`.
        public var until: String
        /// Whether `until` had passed when the entry was applied.
        public var hasExpired = false
    }

    public var entries: [Entry]

    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads a quarantine file; a bad one is refused with its file:line.
    public static func load(file: String) throws -> Quarantine {
        let text: String
        do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
            throw RehearsalError.badScenario(file: file, line: nil, "cannot read the quarantine file: \(error.localizedDescription)")
        }
        return try parse(text: text, file: file)
    }

    static let keys: Set = ["scenario", "step", "reason", "link", "until"]

    public static func parse(text: String, file: String) throws -> Quarantine {
        let r = ScenarioParser.Reader(file: file)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw ScenarioParser.yamlError(e, file: file)
        }
        guard let node else { return Quarantine(entries: []) }
        guard let seq = node.sequence else { throw r.error(node, "a quarantine file is a list of entries with scenario, reason and until") }
        return Quarantine(entries: try seq.map { n in
            guard let m = n.mapping else { throw r.error(n, "a quarantine entry is a mapping with scenario, reason and until") }
            try r.checkKeys(m, allowed: keys, in: "a quarantine entry")
            func required(_ key: String) throws -> String {
                guard let v = m[key] else { throw r.error(n, "a quarantine entry needs `\(key)`") }
                let s = try r.string(v, key)
                guard !s.isEmpty else { throw r.error(v, "`\(key)` is empty") }
                return s
            }
            let until = try required("until")
            guard day(until) != nil else { throw r.error(m["until"]!, "`until` is a date, YYYY-MM-DD (got \(until))") }
            return Entry(scenario: try required("scenario"), step: try m["step"].map { try r.string($0, "step") },
                         reason: try required("reason"), link: try m["link"].map { try r.string($0, "link") }, until: until)
        })
    }

    /// Marks each failed result that an entry covers, as of `today`. An
    /// expired entry's failure stays a failure and says so.
    public func apply(to results: [ScenarioResult], today: Date = Date()) -> [ScenarioResult] {
        results.map { r in
            guard r.outcome == .failed, var entry = entry(for: r) else { return r }
            var r = r
            entry.hasExpired = Self.day(entry.until).map { Self.startOfDay(today) > $0 } ?? true
            r.quarantine = entry
            if entry.hasExpired { r.message = "quarantine expired on \(entry.until): \(r.message ?? "failed")" }
            return r
        }
    }

    func entry(for r: ScenarioResult) -> Entry? {
        let failing = r.steps.first { $0.outcome == .failed }?.name
        return entries.first { e in
            guard fnmatch(e.scenario, r.name, 0) == 0 else { return false }
            guard let step = e.step else { return true }
            return failing.map { fnmatch(step, $0, 0) == 0 } ?? false
        }
    }

    static func day(_ text: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd"
        guard text.count == 10, let d = f.date(from: text) else { return nil }
        return d
    }

    static func startOfDay(_ date: Date) -> Date {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        return c.startOfDay(for: date)
    }
}
