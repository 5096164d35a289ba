import Foundation

/// How a step or scenario ended.
public enum Outcome: String, Sendable, Codable {
    case passed
    /// The guest did not do what the scenario asserted.
    case failed
    /// libvirt, QEMU or the host failed: no verdict on the guest.
    case infrastructure
    /// Stopped by SIGINT/SIGTERM.
    case interrupted
    /// Not run because an earlier step ended the scenario.
    case skipped
    /// A step marked `expect_failure` that failed as expected.
    case expectedFailure = "expected-failure"
}

/// One step's result, with what the guest returned.
public struct StepResult: Sendable, Codable {
    public var name: String
    public var kind: String
    public var line: Int
    public var command: String?
    public var outcome: Outcome
    public var seconds: Double
    /// Why it failed, one line.
    public var message: String?
    public var stdout: String?
    public var stderr: String?
    public var exitStatus: Int32?
    /// For `wait_until_*`: how many times the command ran.
    public var attempts: Int?
    /// Console lines quoted by the failure (a panic, the tail at a timeout).
    public var console: [String]?
    /// For an `expect_failure` step: why it is expected to fail.
    public var expectedFailure: String?
    /// The machine it ran on, in a scenario with several.
    public var machine: String?
}

/// One scenario's result.
public struct ScenarioResult: Sendable, Codable {
    public var name: String
    public var file: String
    public var outcome: Outcome
    /// Why it did not pass, one line (with the step), or nil.
    public var message: String?
    public var steps: [StepResult]
    public var seconds: Double
    /// Seconds from starting the machine to its shell answering.
    public var bootSeconds: Double?
    public var image: String?
    public var imageDigest: String?
    public var kernelRelease: String?
    /// Every boot of the machine: generation, kernel and why it booted.
    public var boots: [BootRecord] = []
    /// The saved state the machine was restored from (a warm start), if it was.
    public var restoredFrom: String?
    /// How the machine started: restored, booted cold and why.
    public var start: String?
    public var uri: String?
    public var accelerator: String?
    public var runDirectory: String?
    /// The evidence in one archive (`Bundle`): written for a failure, or for every scenario with `--bundle`.
    public var bundle: String?
    public var startedAt: Date
    /// The console's last lines when the machine failed before any step ran.
    public var console: [String]?
    /// Earlier attempts that failed, oldest first (`run --retries`); each ran on a fresh machine.
    public var failedAttempts: [ScenarioResult]?
    /// The quarantine entry that covers this scenario's failure, if any.
    public var quarantine: Quarantine.Entry?

    /// Passed, but only after failing: reported as flaky, never as a plain pass.
    public var isFlaky: Bool { outcome == .passed && !(failedAttempts ?? []).isEmpty }
    /// A failure its quarantine entry covers until the entry's date.
    public var isQuarantined: Bool { outcome == .failed && quarantine.map { !$0.hasExpired } == true }

    /// The process exit status for this result: 0 pass, 1 fail (a flaky pass
    /// too, unless `allowFlaky`; a quarantined failure not), 3 infrastructure,
    /// 130 interrupted. The one place a run's verdict is decided.
    public func exitStatus(allowFlaky: Bool = false) -> Int32 {
        switch outcome {
        case .passed, .skipped, .expectedFailure: return isFlaky && !allowFlaky ? 1 : 0
        case .failed: return isQuarantined ? 0 : 1
        case .infrastructure: return 3
        case .interrupted: return 130
        }
    }
}

extension ScenarioResult {
    /// The exit status for a whole run: interrupted beats everything, then
    /// infrastructure, then failure.
    public static func exitStatus(of results: [ScenarioResult], allowFlaky: Bool = false) -> Int32 {
        if results.contains(where: { $0.outcome == .interrupted }) { return 130 }
        return results.map { $0.exitStatus(allowFlaky: allowFlaky) }.max() ?? 0
    }
}

/// Receives progress as a run goes; the CLI prints it. Scenarios may run
/// at once (`run --jobs`): `run` (the run's id) says which one an event is of.
public protocol RunObserver: Sendable {
    func imageProgress(_ image: String, _ line: String)
    func scenarioStarted(_ scenario: Scenario, run: String)
    func machineBooting(_ scenario: Scenario, accelerator: Accelerator, uri: String, run: String)
    func machineReady(_ scenario: Scenario, seconds: Double, run: String)
    /// How the machine started (restored from a saved state, or cold and why).
    func machineStarted(_ scenario: Scenario, note: String, run: String)
    /// `count` is nil when the number of steps is not known ahead (a scenario written in Swift).
    func stepStarted(_ step: Step, index: Int, of count: Int?, run: String)
    func stepFinished(_ result: StepResult, index: Int, of count: Int?, run: String)
    func scenarioFinished(_ result: ScenarioResult, run: String)
    /// A failed scenario starts again on a fresh machine (`--retries`).
    func scenarioRetrying(_ scenario: Scenario, attempt: Int, of attempts: Int, run: String)
    /// A failed scenario's machines stay up (`--keep-on-failure`) until `rehearse stop RUN`.
    func machinesKept(_ scenario: Scenario, machines: [String], directory: URL, run: String)
    /// The scenario stopped before `step` for a person, until `rehearse continue RUN`.
    func paused(_ scenario: Scenario, before step: Step, index: Int, note: String?, machines: [String], directory: URL, run: String)
    /// The machines could not be kept (they are destroyed as usual).
    func keepFailed(_ scenario: Scenario, reason: String, run: String)
    /// The run's bundle could not be written (the run directory still holds the evidence).
    func bundleFailed(_ scenario: Scenario, reason: String, run: String)
}

extension RunObserver {
    public func scenarioRetrying(_ scenario: Scenario, attempt: Int, of attempts: Int, run: String) {}
    public func machinesKept(_ scenario: Scenario, machines: [String], directory: URL, run: String) {}
    public func keepFailed(_ scenario: Scenario, reason: String, run: String) {}
    public func bundleFailed(_ scenario: Scenario, reason: String, run: String) {}
    public func machineStarted(_ scenario: Scenario, note: String, run: String) {}
    public func paused(_ scenario: Scenario, before step: Step, index: Int, note: String?, machines: [String], directory: URL, run: String) {}
}
