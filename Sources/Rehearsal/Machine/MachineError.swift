import Foundation

/// Why a machine or a step failed, classified the way a CI maintainer needs:
/// was it the system under test, or our own infrastructure?
public enum MachineError: Error, Sendable, CustomStringConvertible {
    /// The guest did not do what was asserted or expected (it hung, panicked,
    /// powered off, or a command's result did not match).
    case scenario(String)
    /// libvirt, QEMU or the host failed: not the guest's fault.
    case infrastructure(String)
    /// A deadline passed.
    case timeout(String)
    /// SIGINT/SIGTERM.
    case interrupted(String)

    public var description: String {
        switch self {
        case .scenario(let m), .infrastructure(let m), .timeout(let m), .interrupted(let m): return m
        }
    }
}

/// An assertion that failed with evidence worth showing beside its one-line
/// message (a failed unit's status and journal lines, for example).
public struct CheckFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var evidence: String
    public init(_ message: String, evidence: String) {
        self.message = message
        self.evidence = evidence
    }
    public var description: String { message }
}
