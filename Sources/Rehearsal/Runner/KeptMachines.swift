import Foundation
import Synchronization

/// The machines of a failed scenario, kept running (`run --keep-on-failure`)
/// after its evidence was collected, until someone ends the keep.
///
/// The run's own process holds them (the embedded driver lets no other
/// process near its domains), and serves a socket in the run directory
/// (`keep.sock`, owner only). A client sends one line:
/// - `attach NAME` (empty NAME: the first machine): the answer is `ok` and
///   then the machine's first serial console, both ways, until the client
///   closes; or `error …`.
/// - `stop`: the keep ends (answer `ok`), and the run destroys the machines.
/// A signal (SIGINT/SIGTERM) or the task's cancellation ends it too.
final class KeptMachines: Sendable {
    static let socketName = "keep.sock"

    private let machines: [(name: String, machine: Machine)]
    private let socket: UnixSocket
    private let ended = Mutex<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    /// Attached clients, closed when the keep ends (so that `attach` returns).
    private let clients = Mutex<[UnixSocket]>([])

    init(_ machines: [(name: String, machine: Machine)], directory: URL) throws {
        self.machines = machines
        socket = try UnixSocket.listen(at: directory.appendingPathComponent(Self.socketName).path)
    }

    /// Serves attaches until `stop`, a signal or cancellation; then closes the socket.
    func serve() async {
        let token = UUID()
        Interruption.shared.onSignal(token) { [self] in end() }
        defer { Interruption.shared.removeOnSignal(token) }
        let accepting = Thread { [self] in
            while let client = socket.accept() { Thread { [self] in handle(client) }.start() }
        }
        accepting.start()
        await withTaskCancellationHandler {
            await withCheckedContinuation { c in
                let resumeNow = ended.withLock { s -> Bool in
                    if s.done || Interruption.shared.isRequested { return true }
                    s.waiter = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: { [self] in end() }
        socket.close()
        for (_, m) in machines { m.mirrorConsole(to: nil) }
        for c in clients.withLock({ $0 }) { c.close() }
    }

    private func end() {
        let w = ended.withLock { s -> CheckedContinuation<Void, Never>? in
            s.done = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume()
    }

    private func handle(_ client: UnixSocket) {
        defer { client.close() }
        guard let line = client.readLine() else { return }
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        switch words.first {
        case "stop":
            client.write("ok\n")
            end()
        case "attach":
            let wanted = words.count > 1 ? words[1] : ""
            guard let (_, machine) = machines.first(where: { wanted.isEmpty || $0.name == wanted }) else {
                client.write("error no machine \(wanted) (machines: \(machines.map(\.name).joined(separator: ", ")))\n")
                return
            }
            client.write("ok\n")
            relay(client, machine)
        default:
            client.write("error unknown request: \(line)\n")
        }
    }

    /// The console to the client and the client's bytes to the console, until it closes.
    private func relay(_ client: UnixSocket, _ machine: Machine) {
        clients.withLock { $0.append(client) }
        machine.mirrorConsole { bytes in _ = client.write(bytes) }
        let (typed, continuation) = AsyncStream<[UInt8]>.makeStream()
        let done = DispatchSemaphore(value: 0)
        Task {
            // Wake the shell so that its prompt shows.
            try? await machine.typeOnConsole([0x0d], deadline: .after(seconds: 10))
            for await chunk in typed { try? await machine.typeOnConsole(chunk, deadline: .after(seconds: 30)) }
            done.signal()
        }
        while let chunk = client.read() { continuation.yield(chunk) }
        continuation.finish()
        done.wait()
        machine.mirrorConsole(to: nil)
    }
}

extension Runner {
    /// The socket of the kept machines of run `run` (a run directory, or a
    /// run id or its start under the runs directory); a clear error when
    /// there is no such run or it keeps nothing.
    public func keptSocket(_ run: String) throws -> String {
        var dir = URL(fileURLWithPath: run)
        if !FileManager.default.fileExists(atPath: dir.path) {
            let base = options.runsDirectory ?? options.state.runs
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []).filter { $0.hasPrefix(run) }.sorted()
            guard let name = names.last else { throw RehearsalError(.unknownRun, "no run \(run) (in \(base.path))") }
            dir = base.appendingPathComponent(name)
        }
        let sock = dir.appendingPathComponent(KeptMachines.socketName).path
        guard FileManager.default.fileExists(atPath: sock) else {
            throw RehearsalError(.unknownRun, "run \(dir.lastPathComponent) keeps no machine (it passed, it was not run with --keep-on-failure, or it was stopped)")
        }
        return sock
    }
}
