import Foundation

/// One decision of `rehearse gate`, as kept in the history file
/// (`<state>/gate-history.jsonl`, one JSON object per line, appended).
public struct GateRecord: Codable, Sendable {
    public enum Decision: String, Codable, Sendable {
        /// Every scenario passed and COMMAND ran.
        case ran
        /// Every scenario passed; `--dry-run` kept COMMAND from running.
        case wouldRun = "would-run"
        /// A scenario failed: COMMAND did not run.
        case refused
        /// The rehearsal itself failed (infrastructure, interruption): no verdict, COMMAND did not run.
        case noVerdict = "no-verdict"
    }
    public struct ScenarioOutcome: Codable, Sendable {
        public var file: String
        public var name: String
        public var outcome: Outcome
        public var message: String?
        public var runDirectory: String?
    }

    public var time: Date
    public var candidate: String
    public var candidateDigest: String?
    /// The machines `--machine` named in scenarios with several (nil: every machine).
    public var machines: [String]?
    public var scenarios: [ScenarioOutcome]
    public var decision: Decision
    public var command: [String]
    /// COMMAND's exit status when it ran.
    public var commandStatus: Int32?

    /// The record of a decision taken on `results` for `candidate` (`commandStatus` is set once COMMAND ran).
    public init(candidate: String, results: [ScenarioResult], decision: Decision, command: [String], time: Date = Date()) {
        self.time = time
        self.candidate = candidate
        candidateDigest = results.lazy.compactMap(\.imageDigest).first
        scenarios = results.map { ScenarioOutcome(file: $0.file, name: $0.name, outcome: $0.outcome, message: $0.message, runDirectory: $0.runDirectory) }
        self.decision = decision
        self.command = command
    }

    /// The decision for these scenario results: COMMAND may run only if every one passed.
    public static func decide(_ results: [ScenarioResult], dryRun: Bool) -> Decision {
        if results.contains(where: { $0.outcome == .infrastructure || $0.outcome == .interrupted }) { return .noVerdict }
        if results.allSatisfy({ $0.outcome == .passed }) && !results.isEmpty { return dryRun ? .wouldRun : .ran }
        return .refused
    }
}

/// The append-only history of gate decisions.
public struct GateHistory: Sendable {
    public let file: URL

    public init(state: StateDirectory) {
        file = state.root.appendingPathComponent("gate-history.jsonl")
    }

    /// Appends one line (under a lock, so concurrent gates don't interleave).
    public func append(_ record: GateRecord) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        let lock = try FileLock.acquire(path: file.path + ".lock")
        defer { lock.unlock() }
        let e = JSONCoding.encoder
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = try e.encode(record)
        line.append(0x0A)
        if !FileManager.default.fileExists(atPath: file.path) { FileManager.default.createFile(atPath: file.path, contents: nil) }
        let h = try FileHandle(forWritingTo: file)
        defer { try? h.close() }
        try h.seekToEnd()
        try h.write(contentsOf: line)
    }

    /// Every record, oldest first; lines that don't parse are skipped.
    public func records() -> [GateRecord] {
        guard let text = try? String(contentsOf: file, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONCoding.decoder.decode(GateRecord.self, from: Data($0.utf8)) }
    }
}
