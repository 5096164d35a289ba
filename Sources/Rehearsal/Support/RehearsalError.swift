import Foundation

/// The core's one error: what went wrong (a `Code` that can grow), where
/// (a file and line, a step, a machine), evidence worth showing beside the
/// one-line message, and the error underneath (a `LibvirtError`, a host
/// helper's `HostCommand.Failure`).
///
/// Control flow looks at `code`, never at `message`. A code belongs to one
/// class, and the class alone decides what the error means for a run: the
/// step's outcome (`outcome`) and the process's exit status (`exitStatus`).
///
///     throw RehearsalError.scenario("rehearse-demo.service failed")
///     throw RehearsalError.badScenario(file: "smoke.yaml", line: 3, "unknown key `stpes`")
///
///     do { … } catch RehearsalError.Code.timeout { … }   // matches by code
public struct RehearsalError: Error, Sendable, CustomStringConvertible {
    public var code: Code
    public var message: String
    /// The file the error is about (a scenario, an image), and the line in it.
    public var file: String?
    public var line: Int?
    /// The machine it happened on, when a scenario has several.
    public var machine: String?
    /// What to show beside the message (a failed unit's status and journal).
    public var evidence: String?
    public var underlying: (any Error & Sendable)?

    public init(_ code: Code, _ message: String, file: String? = nil, line: Int? = nil,
                machine: String? = nil, evidence: String? = nil, underlying: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.file = file
        self.line = line
        self.machine = machine
        self.evidence = evidence
        self.underlying = underlying
    }

    /// One line, `FILE:LINE: message` when it names a place, like a compiler's.
    public var description: String {
        switch (file, line) {
        case let (file?, line?): return "\(file):\(line): \(message)"
        case let (file?, nil): return "\(file): \(message)"
        default: return message
        }
    }

    /// The step's or scenario's outcome this error stands for.
    public var outcome: Outcome { code.kind.outcome }
    /// The process exit status: 1 the system under test failed, 2 bad input,
    /// 3 infrastructure, 130 interrupted (the README's table).
    public var exitStatus: Int32 { code.kind.exitStatus }

    /// The same error, placed in `file` (at `line`) unless it already names a place.
    public func at(_ file: String, line: Int?) -> RehearsalError {
        var e = self
        if e.file == nil { (e.file, e.line) = (file, line) }
        return e
    }
}

extension RehearsalError {
    /// What went wrong. New codes may be added; each belongs to one `Kind`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public let kind: Kind
        public init(_ name: String, _ kind: Kind) {
            self.name = name
            self.kind = kind
        }
        public var description: String { name }
        public static func == (a: Code, b: Code) -> Bool { a.name == b.name }
        public func hash(into h: inout Hasher) { h.combine(name) }
        /// Matches a thrown error by code: `catch RehearsalError.Code.timeout { … }`.
        public static func ~= (code: Code, error: any Error) -> Bool {
            (error as? RehearsalError)?.code == code
        }

        // Bad input, refused before anything boots.
        /// A scenario file, or a scenario declared in code, that can't be used.
        public static let badScenario = Code("bad scenario", .badInput)
        /// A disk image, NixOS system or built image that can't be used.
        public static let badImage = Code("bad image", .badInput)
        /// No recipe builds the image or generation named.
        public static let unknownImage = Code("unknown image", .badInput)
        /// A run named on the command line (`attach`, `stop`) that does not exist or keeps no machine.
        public static let unknownRun = Code("unknown run", .badInput)

        // The system under test.
        /// The guest did not do what was asserted or expected (it hung,
        /// panicked, powered off, or a command's result did not match).
        public static let scenario = Code("scenario failure", .failure)
        /// A deadline passed.
        public static let timeout = Code("timeout", .failure)
        /// systemd units are in the failed state (after a boot, or at the end).
        public static let unitFailed = Code("unit failed", .failure)

        // Our own side: libvirt, QEMU, the host.
        public static let infrastructure = Code("infrastructure", .infrastructure)
        /// The host has too little free memory for the machine.
        public static let outOfMemory = Code("out of memory", .infrastructure)
        /// An image recipe failed.
        public static let imageBuild = Code("image build", .infrastructure)

        /// SIGINT/SIGTERM, or the task was cancelled.
        public static let interrupted = Code("interrupted", .interrupted)
    }

    /// The classes of codes: all a run needs to know to decide a verdict.
    public enum Kind: Sendable {
        case badInput, failure, infrastructure, interrupted

        public var outcome: Outcome {
            switch self {
            case .badInput, .failure: return .failed
            case .infrastructure: return .infrastructure
            case .interrupted: return .interrupted
            }
        }
        public var exitStatus: Int32 {
            switch self {
            case .failure: return 1
            case .badInput: return 2
            case .infrastructure: return 3
            case .interrupted: return 130
            }
        }
    }

    // The common spellings.
    public static func scenario(_ m: String) -> RehearsalError { RehearsalError(.scenario, m) }
    public static func timeout(_ m: String) -> RehearsalError { RehearsalError(.timeout, m) }
    public static func infrastructure(_ m: String, underlying: (any Error & Sendable)? = nil) -> RehearsalError {
        RehearsalError(.infrastructure, m, underlying: underlying)
    }
    public static func interrupted(_ m: String) -> RehearsalError { RehearsalError(.interrupted, m) }
    public static func badScenario(file: String, line: Int?, _ m: String) -> RehearsalError {
        RehearsalError(.badScenario, m, file: file, line: line)
    }
}
