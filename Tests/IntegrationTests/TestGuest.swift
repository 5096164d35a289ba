import Foundation
import Synchronization
import Testing
@testable import Rehearsal

/// What the integration tests share: the repository, a runner with one
/// hypervisor connection, and one booted tiny guest for the tests that can
/// safely run on the same machine (it is destroyed when the process exits).
enum TestGuest {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let runs = FileManager.default.temporaryDirectory.appendingPathComponent("rehearse-test-runs-\(getpid())")

    /// The tests' own state directory: runs, embedded roots and the gate
    /// history are private to this test process; only built images (a
    /// cache) are shared with the user's state directory. The environment
    /// says so too, for the `rehearse` processes the tests start.
    static let state: StateDirectory = {
        let user = StateDirectory.fromEnvironment()
        let mine = StateDirectory(root: runs.appendingPathComponent("state"), images: user.images)
        setenv("REHEARSE_STATE_DIR", mine.root.path, 1)
        setenv("REHEARSE_IMAGE_CACHE", mine.images.path, 1)
        AfterTheSuite.install(state: mine)
        return mine
    }()
    static let runner = Runner(options: .init(state: state, runsDirectory: runs), observer: observer)
    /// Lets a test act when the runner reaches a point of a scenario's run.
    static let observer = HookObserver()

    /// Writes a scenario into a temporary file and prepares it.
    static func scenario(_ yaml: String, name: String = "t") throws -> Runner.Prepared {
        let dir = runs.appendingPathComponent("scenarios")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let f = dir.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8)).yaml")
        try yaml.write(to: f, atomically: true, encoding: .utf8)
        // Recipes are found from the repository, whatever the working directory.
        setenv("REHEARSE_IMAGES", repo.appendingPathComponent("Images").path, 1)
        return try Runner.prepare(files: [f.path])[0]
    }

    private static let shared = Shared()

    /// The shared tiny guest, booted on first use.
    static func machine() async throws -> Machine { try await shared.get() }

    actor Shared {
        private var machine: Machine?

        func get() async throws -> Machine {
            if let m = machine, m.io.firstIncident == nil { return m }
            await machine?.destroy()
            let p = try TestGuest.scenario("machine: {image: tiny}\nsteps: []\n", name: "shared")
            let dir = TestGuest.runs.appendingPathComponent("shared-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            let m = try await TestGuest.runner.bootMachine(p, directory: dir, deadline: .after(seconds: 180))
            machine = m
            // The test process exits without awaiting anything: cut the
            // power synchronously then (the machine's emergency hook does).
            Shared.installExitHook()
            return m
        }

        private static let hook: Void = { atexit { Interruption.shared.runEmergencyHooks() } }()
        static func installExitHook() { _ = hook }
    }

    /// Runs one step on the shared guest.
    static func step(_ yaml: String) async throws -> StepResult {
        let p = try scenario("machine: {image: tiny}\nsteps:\n" + yaml)
        let step = p.scenario.steps[0]
        let m = try await machine()
        return await StepExecutor.execute(step, on: m, deadline: .after(seconds: step.timeout ?? step.defaultTimeout))
    }

    /// Why each boot of a scenario's machine happened; the first is "power
    /// on" whether the machine booted or was restored from a saved state.
    static func causes(_ r: ScenarioResult) -> [String] {
        r.boots.enumerated().map { i, b in i == 0 && b.cause.hasPrefix("restore ") ? "power on" : b.cause }
    }

    /// What must not change in a generation's files: bytes, size, mtime, mode.
    static func fingerprint(_ files: [String]) throws -> [String] {
        try files.map { f in
            let a = try FileManager.default.attributesOfItem(atPath: f)
            let sum = try SHA256.file(f)
            return "\(sum) \(a[.size]!) \(a[.modificationDate]!) \(a[.posixPermissions]!)"
        }
    }

    /// PIDs of running QEMU processes for the libvirt domain `name`.
    static func qemuPIDs(domain name: String) -> Set<Int32> {
        qemuPIDs().filter { pid in
            let d = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
            return String(decoding: d, as: UTF8.self).contains("guest=\(name),")
        }
    }

    /// The domain name a run directory's `domain.xml` records.
    static func domainName(inRunDirectory dir: URL) -> String? {
        guard let xml = try? String(contentsOf: dir.appendingPathComponent("domain.xml"), encoding: .utf8),
              let a = xml.range(of: "<name>"), let b = xml.range(of: "</name>") else { return nil }
        return String(xml[a.upperBound..<b.lowerBound])
    }

    /// Whether the run's channel log shows a command the guest began (its begin frame).
    static func channelShowsACommand(inRunDirectory dir: URL) -> Bool {
        let data = FileManager.default.contents(atPath: dir.appendingPathComponent("channel.log").path) ?? Data()
        return data.split(separator: 1).contains { $0.first.map { (48...57).contains($0) } == true && $0.contains(UInt8(ascii: "B")) }
    }

    /// PIDs of running QEMU processes.
    static func qemuPIDs() -> Set<Int32> {
        let procs = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return Set(procs.compactMap { p -> Int32? in
            guard let pid = Int32(p), let d = FileManager.default.contents(atPath: "/proc/\(p)/cmdline"),
                  let exe = d.split(separator: 0).first, String(decoding: exe, as: UTF8.self).contains("qemu-system") else { return nil }
            return pid
        })
    }

    /// Polls `condition` every 50 ms until it holds or `seconds` pass. It
    /// sleeps as a task, never blocking a thread: the cooperative pool has
    /// one thread per core, and a blocked one starves every guest's steps.
    static func eventually(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Deadline.after(seconds: seconds)
        while !deadline.hasPassed {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return condition()
    }

    /// Runs a blocking host command on a thread of its own.
    @discardableResult
    static func host(_ argv: [String], environment: [String: String]? = nil) async throws -> String {
        try await offload { try HostCommand.run(argv, environment: environment) }
    }

    /// Headless Chromium (Debian's package; scripts/setup.sh installs it)
    /// with a profile of its own: `dump` gives the DOM after scripts ran,
    /// `screenshot` a PNG. The profile is removed by `close()`.
    struct Browser {
        let base: [String]
        let profile: URL

        init() throws {
            let chromium = try #require(["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) },
                                        "Debian's chromium package is needed (scripts/setup.sh installs it)")
            profile = FileManager.default.temporaryDirectory.appendingPathComponent("rehearse-chromium-\(UUID().uuidString)")
            base = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=\(profile.path)"]
        }

        func dump(_ page: URL) async throws -> String { try await TestGuest.host(base + ["--dump-dom", page.absoluteString]) }

        /// Renders `page` into `png` and returns its bytes.
        func screenshot(_ page: URL, to png: URL) async throws -> Data {
            _ = try await TestGuest.host(base + ["--screenshot=\(png.path)", "--window-size=1200,1600", page.absoluteString])
            return try Data(contentsOf: png)
        }

        func close() { try? FileManager.default.removeItem(at: profile) }
    }
}

/// A `RunObserver` that calls the hook a test set for a scenario's name
/// when that scenario is retried (`Runner.run(_:retries:)`), and ignores the rest.
final class HookObserver: RunObserver, Sendable {
    private let hooks = Mutex<[String: @Sendable (Int) -> Void]>([:])

    func onRetry(of scenario: String, _ hook: @escaping @Sendable (_ attempt: Int) -> Void) {
        hooks.withLock { $0[scenario] = hook }
    }

    func scenarioRetrying(_ scenario: Scenario, attempt: Int, of attempts: Int, run: String) {
        hooks.withLock { $0[scenario.name] }?(attempt)
    }
    func imageProgress(_ image: String, _ line: String) {}
    func scenarioStarted(_ scenario: Scenario, run: String) {}
    func machineBooting(_ scenario: Scenario, accelerator: Accelerator, uri: String, run: String) {}
    func machineReady(_ scenario: Scenario, seconds: Double, run: String) {}
    func stepStarted(_ step: Step, index: Int, of count: Int?, run: String) {}
    func stepFinished(_ result: StepResult, index: Int, of count: Int?, run: String) {}
    func scenarioFinished(_ result: ScenarioResult, run: String) {}
}
