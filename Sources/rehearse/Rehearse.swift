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
        version: Version.rehearsal,
        subcommands: [RunCommand.self, ShellCommand.self, AttachCommand.self, ContinueCommand.self, StopCommand.self, CompareCommand.self, GateCommand.self, GenerationsCommand.self, HostGroupCommand.self, PreviewCommand.self, SnapshotsCommand.self, ReplayCommand.self, ImageCommand.self, CleanCommand.self]
    )

    /// The one place the program exits. Commands throw: `ExitCode` for a
    /// verdict, `RehearsalError` for what stopped them (its class decides the
    /// status), ArgumentParser's errors for bad usage (2, as documented).
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
        } catch let e as RehearsalError {
            fail(e.description, status: e.exitStatus)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            // Not ours and not a usage error: something on the host failed.
            fail("\(error)", status: RehearsalError.Kind.infrastructure.exitStatus)
        }
    }

    /// Prints one error line and exits with `status`.
    private static func fail(_ message: String, status: Int32) -> Never {
        FileHandle.standardError.write(Data("rehearse: \(message)\n".utf8))
        Foundation.exit(status)
    }
}
