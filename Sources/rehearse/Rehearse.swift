import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse`: rehearse an operating-system upgrade in a virtual machine.
@main
struct Rehearse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rehearse",
        abstract: "Rehearse an operating-system upgrade in a virtual machine before it touches the host.",
        discussion: """
        Exit status: 0 every scenario passed, 1 a scenario failed, 2 bad usage or a bad \
        scenario or image, 3 infrastructure failure (libvirt, QEMU, the host), 130 interrupted.
        """,
        subcommands: [RunCommand.self, CompareCommand.self, GateCommand.self, GenerationsCommand.self, ImageCommand.self, CleanCommand.self]
    )

    /// Like ArgumentParser's, but bad usage exits with 2 as documented.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as ExitCode {
            Foundation.exit(e.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}

/// Prints one error line and exits with `status`.
func fail(_ message: String, status: Int32) -> Never {
    FileHandle.standardError.write(Data("rehearse: \(message)\n".utf8))
    Foundation.exit(status)
}
