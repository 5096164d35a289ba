import Foundation

/// The differences between two generations: what the probes saw on each,
/// classified, and what the scenario's steps did on each.
public struct Comparison: Codable, Sendable {
    public struct Side: Codable, Sendable {
        public var generation: Generation
        public var snapshot: Snapshot
        /// Seconds from power-on to the shell answering, one per boot.
        public var bootSeconds: [Double]
        /// When this side's rehearsal began and when its first boot's shell
        /// answered: two sides rehearsed side by side overlap.
        public var started: Date?
        public var ready: Date?
        public var steps: [StepResult]
        public var runDirectory: String?
        /// In a scenario with several machines, the one this side probed and timed.
        public var machine: String?
        /// Where the probed machine's console log and transcripts are.
        public var machineDirectory: String?
    }

    public enum PackageKind: String, Codable, Sendable { case added, removed, upgraded, downgraded }
    public struct PackageChange: Codable, Sendable, Equatable {
        public var manager: String
        public var name: String
        public var old: String?
        public var new: String?
        public var kind: PackageKind
    }

    public enum UnitKind: String, Codable, Sendable {
        case newlyFailing = "newly failing", fixed = "no longer failing", newlyActive = "newly active"
        case noLongerActive = "no longer active", added, gone, enablement = "enablement changed"
    }
    public struct UnitChange: Codable, Sendable, Equatable {
        public var name: String
        public var old: UnitState?
        public var new: UnitState?
        public var kind: UnitKind
    }

    public enum AssertionKind: String, Codable, Sendable { case regression, alreadyBroken = "already broken", fix, passes, differs }
    public struct AssertionChange: Codable, Sendable, Equatable {
        public var step: String
        public var line: Int
        public var old: Outcome
        public var new: Outcome
        public var kind: AssertionKind
        public var message: String?
    }

    public enum FileKind: String, Codable, Sendable { case added, removed, changed }
    public struct FileChange: Codable, Sendable, Equatable {
        public var path: String
        public var kind: FileKind
    }

    public struct BootTime: Codable, Sendable {
        public var oldMin: Double, oldMedian: Double, newMin: Double, newMedian: Double
        /// The change of the medians, and the noise band: the larger spread (max − min) of the two sides.
        public var change: Double
        public var noise: Double
        public var oldPhases: [String: Double]
        public var newPhases: [String: Double]
    }

    public var old: Side
    public var new: Side
    public var packages: [PackageChange]
    public var units: [UnitChange]
    public var portsOpened: [String]
    public var portsClosed: [String]
    public var etc: [FileChange]
    public var assertions: [AssertionChange]
    public var bootTime: BootTime
    public var kernelChange: [String]?
    public var osChange: [String]?
    public var rootUsedChange: Int64?
    /// What was normalised before comparing, and which probes were skipped.
    public var notes: [String]
    public var seconds: Double = 0

    /// One line per regression: assertions that passed on OLD and fail on NEW, and units that fail only on NEW.
    public var regressions: [String] {
        assertions.filter { $0.kind == .regression }.map { "step `\($0.step)` passed on old, fails on new: \($0.message ?? $0.new.rawValue)" }
            + units.filter { $0.kind == .newlyFailing }.map { "unit \($0.name) fails on new (\($0.old?.active ?? "absent") on old)" }
    }

    public var hasDifferences: Bool {
        !packages.isEmpty || !units.isEmpty || !portsOpened.isEmpty || !portsClosed.isEmpty || !etc.isEmpty
            || assertions.contains { $0.kind != .passes } || kernelChange != nil || osChange != nil || (rootUsedChange ?? 0) != 0
    }

    /// Compares two sides.
    public init(old: Side, new: Side) {
        self.old = old
        self.new = new
        let a = old.snapshot, b = new.snapshot
        packages = Self.diffPackages(a.packages, b.packages)
        units = Self.diffUnits(a.units, b.units)
        portsOpened = b.ports.subtracting(a.ports).sorted()
        portsClosed = a.ports.subtracting(b.ports).sorted()
        etc = Self.diffFiles(a.etc, b.etc)
        assertions = Self.diffSteps(old.steps, new.steps)
        bootTime = Self.boot(old.bootSeconds, new.bootSeconds, a.bootPhases, b.bootPhases)
        kernelChange = a.kernel == b.kernel ? nil : [a.kernel ?? "?", b.kernel ?? "?"]
        let osA = a.osRelease["PRETTY_NAME"] ?? a.osRelease["VERSION_ID"], osB = b.osRelease["PRETTY_NAME"] ?? b.osRelease["VERSION_ID"]
        osChange = osA == osB ? nil : [osA ?? "?", osB ?? "?"]
        if let x = a.rootUsedBytes, let y = b.rootUsedBytes { rootUsedChange = y - x }
        notes = Probes.normalised + (a.skipped.map { "old: skipped \($0)" }) + (b.skipped.map { "new: skipped \($0)" })
    }

    static func diffPackages(_ a: [String: [String: String]], _ b: [String: [String: String]]) -> [PackageChange] {
        var out: [PackageChange] = []
        for manager in Set(a.keys).union(b.keys).sorted() {
            let x = a[manager] ?? [:], y = b[manager] ?? [:]
            for name in Set(x.keys).union(y.keys).sorted() {
                switch (x[name], y[name]) {
                case let (o?, n?) where o != n:
                    let newer = manager == "dpkg" || manager == "rpm" ? DebianVersion(n) > DebianVersion(o) : n > o
                    out.append(PackageChange(manager: manager, name: name, old: o, new: n, kind: newer ? .upgraded : .downgraded))
                case let (nil, n?): out.append(PackageChange(manager: manager, name: name, old: nil, new: n, kind: .added))
                case let (o?, nil): out.append(PackageChange(manager: manager, name: name, old: o, new: nil, kind: .removed))
                default: continue
                }
            }
        }
        return out
    }

    static func diffUnits(_ a: [String: UnitState], _ b: [String: UnitState]) -> [UnitChange] {
        var out: [UnitChange] = []
        for name in Set(a.keys).union(b.keys).sorted() {
            let x = a[name], y = b[name]
            guard x != y else { continue }
            let kind: UnitKind
            switch (x, y) {
            case (nil, let n?): kind = n.active == "failed" ? .newlyFailing : .added
            case (_?, nil): kind = .gone
            case let (o?, n?):
                if n.active == "failed" && o.active != "failed" { kind = .newlyFailing }
                else if o.active == "failed" && n.active != "failed" { kind = .fixed }
                else if n.active == "active" && o.active != "active" { kind = .newlyActive }
                else if o.active == "active" && n.active != "active" { kind = .noLongerActive }
                else if o.enabled != n.enabled { kind = .enablement }
                else { continue }
            default: continue
            }
            out.append(UnitChange(name: name, old: x, new: y, kind: kind))
        }
        // Regressions first.
        return out.sorted { ($0.kind == .newlyFailing ? 0 : 1, $0.name) < ($1.kind == .newlyFailing ? 0 : 1, $1.name) }
    }

    static func diffFiles(_ a: [String: String], _ b: [String: String]) -> [FileChange] {
        Set(a.keys).union(b.keys).sorted().compactMap { p in
            switch (a[p], b[p]) {
            case (nil, _?): return FileChange(path: p, kind: .added)
            case (_?, nil): return FileChange(path: p, kind: .removed)
            case let (x?, y?) where x != y: return FileChange(path: p, kind: .changed)
            default: return nil
            }
        }
    }

    /// Steps are matched by position (both sides run the same scenario).
    static func diffSteps(_ a: [StepResult], _ b: [StepResult]) -> [AssertionChange] {
        zip(a, b).map { x, y in
            let ok: (Outcome) -> Bool = { $0 == .passed || $0 == .expectedFailure }
            let kind: AssertionKind
            switch (ok(x.outcome), ok(y.outcome)) {
            case (true, true): kind = .passes
            case (true, false): kind = y.outcome == .skipped ? .differs : .regression
            case (false, false): kind = .alreadyBroken
            case (false, true): kind = .fix
            }
            return AssertionChange(step: x.name, line: x.line, old: x.outcome, new: y.outcome, kind: kind,
                                   message: kind == .regression ? y.message : (kind == .alreadyBroken ? x.message : nil))
        }
    }

    static func boot(_ a: [Double], _ b: [Double], _ pa: [String: Double], _ pb: [String: Double]) -> BootTime {
        func median(_ v: [Double]) -> Double {
            guard !v.isEmpty else { return 0 }
            let s = v.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let spread = max((a.max() ?? 0) - (a.min() ?? 0), (b.max() ?? 0) - (b.min() ?? 0))
        return BootTime(oldMin: a.min() ?? 0, oldMedian: median(a), newMin: b.min() ?? 0, newMedian: median(b),
                        change: median(b) - median(a), noise: spread, oldPhases: pa, newPhases: pb)
    }
}
