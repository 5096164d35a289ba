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
/// - `continue`: at a pause, the scenario goes on (answer `ok`).
/// A signal (SIGINT/SIGTERM) or the task's cancellation ends it too.
final class KeptMachines: Sendable {
    static let socketName = "keep.sock"

    private let machines: [(name: String, machine: Machine)]
    private let socket: UnixSocket
    /// How the keep ended.
    enum End: Sendable { case stop, `continue`, interrupted }
    private let ended = Mutex<(end: End?, waiter: CheckedContinuation<End, Never>?)>((nil, nil))
    /// Attached clients, closed when the keep ends (so that `attach` returns).
    private let clients = Mutex<[UnixSocket]>([])

    init(_ machines: [(name: String, machine: Machine)], directory: URL) throws {
        self.machines = machines
        socket = try UnixSocket.listen(at: directory.appendingPathComponent(Self.socketName).path)
    }

    /// Serves attaches until `stop`, `continue`, a signal or cancellation; then closes the socket.
    func serve() async -> End {
        let token = UUID()
        Interruption.shared.onSignal(token) { [self] in end(.interrupted) }
        defer { Interruption.shared.removeOnSignal(token) }
        let accepting = Thread { [self] in
            while let client = socket.accept() { Thread { [self] in handle(client) }.start() }
        }
        accepting.start()
        let how = await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<End, Never>) in
                let now = ended.withLock { s -> End? in
                    if Interruption.shared.isRequested { s.end = s.end ?? .interrupted }
                    if let e = s.end { return e }
                    s.waiter = c
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
        } onCancel: { [self] in end(.interrupted) }
        socket.close()
        for (_, m) in machines { m.mirrorConsole(to: nil) }
        for c in clients.withLock({ $0 }) { c.close() }
        return how
    }

    /// The first end wins; the waiter, if there is one yet, is resumed once.
    private func end(_ how: End) {
        let w = ended.withLock { s -> (CheckedContinuation<End, Never>, End)? in
            guard s.end == nil else { return nil }
            s.end = how
            defer { s.waiter = nil }
            return s.waiter.map { ($0, how) }
        }
        if let (c, how) = w { c.resume(returning: how) }
    }

    private func handle(_ client: UnixSocket) {
        defer { client.close() }
        guard let line = client.readLine() else { return }
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        switch words.first {
        case "stop":
            client.write("ok\n")
            end(.stop)
        case "continue":
            client.write("ok\n")
            end(.continue)
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

    /// Asks the run holding kept or paused machines to `stop` or `continue`.
    public func tellKept(_ run: String, _ request: KeptRequest) throws {
        let socket = try UnixSocket.connect(to: try keptSocket(run))
        defer { socket.close() }
        socket.write("\(request.rawValue)\n")
        guard socket.readLine() == "ok" else { throw RehearsalError(.unknownRun, "run \(run) did not take `\(request.rawValue)`") }
    }
}

/// What `rehearse stop` and `rehearse continue` ask of a run that keeps machines.
public enum KeptRequest: String, Sendable {
    case stop
    case `continue`
}
