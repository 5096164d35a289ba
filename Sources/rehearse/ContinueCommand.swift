import ArgumentParser
import Foundation
import Rehearsal

/// `rehearse continue RUN`: a scenario paused for a person (`run --step`, a `pause` step) goes on.
struct ContinueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "continue",
        abstract: "Let a scenario paused for a person (`run --step`, a `pause` step) go on with its next step.",
        discussion: "Example:\n  rehearse continue 20261203-104012-1a2b3c"
    )

    @Argument(help: "The run: its id, the start of its id, or its run directory.") var run: String
    @Option(help: "Where run directories are (default: <state>/runs).") var runDir: String?

    func run() async throws {
        let runner = Runner(options: .init(runsDirectory: runDir.map { URL(fileURLWithPath: $0) }))
        try runner.tellKept(run, .continue)
        print("rehearse continue: run \(run) goes on.")
    }
}
