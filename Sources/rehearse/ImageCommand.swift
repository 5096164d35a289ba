import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse image build NAME`: build a recipe's generations ahead of time.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build and inspect guest images.",
        subcommands: [Build.self]
    )

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a recipe's generations (a recipe or generation name, or a recipe path), or find them in the cache."
        )

        @Argument(help: "Recipe name or path.")
        var name: String

        func run() throws {
            let recipe = try ImageRecipe.resolve(name, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil)).recipe
            let terminal = Terminal()
            let reporter = TerminalReporter(terminal: terminal)
            let clock = Stopwatch()
            do {
                let built = try recipe.build(state: StateDirectory.fromEnvironment()) { reporter.imageProgress(recipe.name, $0) }
                terminal.finishLine()
                print("recipe \(recipe.name) ready in \(String(format: "%.1f", clock.seconds)) s: \(built.directory.path)")
                for g in built.generations {
                    print("  generation \(g.name)  \(g.shortDigest)  \(g.boot.rawValue) boot  \(g.version)")
                }
                for (name, dir) in built.payloads.sorted(by: { $0.key < $1.key }) {
                    print("  payload image:\(recipe.name)/\(name)  \(dir.path)")
                }
            } catch {
                terminal.finishLine()
                throw error
            }
        }
    }
}
