import ArgumentParser
import Foundation
import Rehearsal

/// `rehearse image build NAME`: build an image ahead of time.
struct ImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build and inspect guest images.",
        subcommands: [Build.self]
    )

    struct Build: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build an image from its recipe (a name under Images/, or a path), or find it in the cache."
        )

        @Argument(help: "Recipe name or path.")
        var name: String

        func run() throws {
            let recipe: ImageRecipe
            do {
                recipe = try ImageRecipe.resolve(name, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil))
            } catch {
                fail("\(error)", status: 2)
            }
            let terminal = Terminal()
            let reporter = TerminalReporter(terminal: terminal)
            let clock = Stopwatch()
            do {
                let image = try recipe.image(state: .fromEnvironment()) { reporter.imageProgress(recipe.name, $0) }
                terminal.finishLine()
                print("image \(image.name) \(image.digest.prefix(16)) ready in \(String(format: "%.1f", clock.seconds)) s: \(image.directory)")
            } catch {
                terminal.finishLine()
                fail("\(error)", status: 3)
            }
        }
    }
}
