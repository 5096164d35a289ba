import ArgumentParser
import Foundation
import Rehearsal

/// `rehearse stop RUN`: end the keep of a failed run's machines.
struct StopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "End the keep of a run's machines (`run --keep-on-failure`, or a pause): the run destroys them and goes on.",
        discussion: "Example:\n  rehearse stop 20261203-104012-1a2b3c"
    )

    @Argument(help: "The run: its id, the start of its id, or its run directory.") var run: String
    @Option(help: "Where run directories are (default: <state>/runs).") var runDir: String?

    func run() async throws {
        let runner = Runner(options: .init(runsDirectory: runDir.map { URL(fileURLWithPath: $0) }))
        try runner.tellKept(run, .stop)
        print("rehearse stop: run \(run) ends its keep; its machines are destroyed.")
    }
}
