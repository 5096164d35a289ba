import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse host`: the running system as something to rehearse on.
struct HostGroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Rehearse on this host's own system.",
        subcommands: [Capture.self]
    )

    /// `rehearse host capture`: copy the host into a generation.
    struct Capture: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy this host's system (or a tree) into a generation that boots in a VM.",
            discussion: """
            Copies the root filesystem and the other local disk filesystems mounted below it \
            (a separate /boot, /usr or /var) into Rehearsal's state directory, leaving out \
            pseudo-filesystems, network and tmpfs mounts, /tmp, caches, swap files, VM disk images, \
            Rehearsal's own state and whatever --exclude names. The host is only read, with dpkg's \
            locks held. The copy is then adapted to run as a VM (each change is listed) and made \
            into a disk that boots the host's own kernel through GRUB.

            The copy holds the host's secrets (/etc/shadow, SSH host keys): it is readable by its \
            owner only; leave them out with --exclude if the rehearsal does not need them.

            A second capture of an unchanged host copies nothing new and reuses the generation.

            Examples:
              rehearse host capture
              rehearse host capture --exclude /srv/media --exclude '*.iso'
              rehearse host capture --root /srv/chroots/bookworm --name bookworm
            """
        )

        @Option(help: "The generation's name.") var name = "host"
        @Option(help: "Capture this tree instead of / (a chroot, or a test's stand-in).") var root = "/"
        @Option(name: .customLong("exclude"), help: "Leave out paths matching this rsync pattern (repeatable; a leading / anchors at the root).")
        var excludes: [String] = []
        @Option(name: .customLong("kernel"), help: "For a tree with no kernel in /boot: boot it with this generation's kernel (for example debian).")
        var kernel: String?

        func run() async throws {
            let state = StateDirectory.fromEnvironment()
            var capture = HostCapture()
            capture.name = name
            capture.root = root
            capture.excludes = excludes
            let terminal = Terminal()
            if let kernel {
                let reporter = TerminalReporter(terminal: terminal)
                let runner = Runner(options: .init(state: state), observer: reporter)
                capture.kernelFrom = try await runner.generation(try Candidate.named(kernel, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil)))
                terminal.finishLine()
            }
            let clock = Stopwatch()
            let frozen = capture
            let result: HostCapture.Result
            do {
                result = try await Task.detached { try frozen.run(state: state) { Self.show($0, terminal) } }.value
            } catch {
                terminal.finishLine()
                throw error
            }
            terminal.finishLine()
            let g = result.generation
            print(result.reused ? "unchanged since the last capture: generation \(g.name) \(g.shortDigest) reused" : "captured \(frozen.root) as generation \(g.name) \(g.shortDigest)")
            print("  \(g.version), \(g.boot.rawValue) boot, disk \(Formatting.size(g.size)) at \(g.disk ?? "-")")
            print(String(format: "  copy %.1f s, disk %.1f s, total %.1f s", result.copySeconds, result.diskSeconds, clock.seconds))
            for note in g.adaptations ?? [] { print("  adapted: \(note)") }
            print("  rehearse on it: `image: \(g.name)` in a scenario, rehearse gate --candidate \(g.name) --scenario FILE -- COMMAND, or rehearse shell \(g.name)")
        }

        static func show(_ e: HostCapture.Event, _ terminal: Terminal) {
            switch e {
            case let .plan(p):
                terminal.lines(["capturing \(p.root): \(p.files) files, \(Formatting.size(p.bytes)); \(Formatting.size(p.bytesToCopy)) to copy now"]
                               + p.leftOut.map { "  leaving out \($0.pattern) (\($0.why))" })
            case let .copying(pct): terminal.status("copying: \(pct)%")
            case let .step(s): terminal.status(s)
            }
        }
    }
}
