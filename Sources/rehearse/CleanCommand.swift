import ArgumentParser
import Foundation
import Libvirt
import Rehearsal
import RehearsalProgram

/// `rehearse clean`: remove what killed runs left behind.
struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Destroy machines that killed rehearse runs left behind.",
        discussion: """
        Only domains tagged as Rehearsal's are touched, and only when the rehearse process \
        that started them is gone. Embedded roots in use by a live rehearse are skipped. \
        With --images, old builds of the recipes under Images/ go too; with --snapshots, \
        every saved running state (warm starts make them again as needed).
        """
    )

    @Option(name: [.customShort("c"), .long], help: "Also sweep this libvirt URI (for example qemu:///system).")
    var connect: String?

    @Flag(help: "Also remove image builds that the recipes' current files and inputs would no longer make.")
    var images = false

    @Flag(help: "Also remove every saved running state (`rehearse snapshots`); one in use by a live run stays.")
    var snapshots = false

    /// One root per process (libvirt's rule), so the parent runs one child per root.
    @Option(help: .hidden)
    var embeddedRoot: String?

    func run() throws {
        if let embeddedRoot {
            do {
                guard let removed = try Janitor.sweepEmbeddedRoot(URL(fileURLWithPath: embeddedRoot)) else {
                    print("skipped \(embeddedRoot): in use by a running rehearse")
                    return
                }
                for r in removed { print("removed \(r)") }
            } catch {
                throw RehearsalError.infrastructure("clean \(embeddedRoot): \(error)")
            }
            return
        }
        let state = StateDirectory.fromEnvironment()
        var count = 0
        var failed = false
        let (free, busy) = Janitor.embeddedRoots(state: state)
        for b in busy { print("skipped \(b.path): in use by a running rehearse") }
        for root in free {
            let self_ = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
            do {
                let out = try HostCommand.run([self_, "clean", "--embedded-root", root.path])
                for line in out.split(separator: "\n") {
                    print(line)
                    if line.hasPrefix("removed ") { count += 1 }
                }
            } catch {
                FileHandle.standardError.write(Data("rehearse: \(error)\n".utf8))
                failed = true
            }
        }
        if let uri = connect ?? ProcessInfo.processInfo.environment["LIBVIRT_DEFAULT_URI"] {
            do {
                let c = try Connection(uri: uri)
                for r in try Janitor.sweep(c, ownedByDeadOnly: true) { print("removed \(r)"); count += 1 }
                c.close()
            } catch {
                throw RehearsalError.infrastructure("clean \(uri): \(error)")
            }
        }
        if images {
            for dir in ImageRecipe.staleBuilds(state: state, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil)) {
                // Built files are read-only; make them writable to remove them.
                _ = try? HostCommand.run(["chmod", "-R", "u+w", dir.path])
                do {
                    try FileManager.default.removeItem(at: dir)
                    print("removed old image build \(dir.path)")
                    count += 1
                } catch {
                    FileHandle.standardError.write(Data("rehearse: cannot remove \(dir.path): \(error)\n".utf8))
                    failed = true
                }
            }
        }
        if snapshots {
            let store = SavedStateStore(state: state)
            let (n, bytes) = store.removeAll()
            if n > 0 { print("removed \(n) saved state(s), \(Formatting.size(bytes))") }
            let left = store.list().count
            if left > 0 { print("kept \(left) saved state(s) in use by a running rehearse") }
            count += n
        }
        print(count == 0 ? "nothing to clean" : "removed \(count) leftover(s)")
        if failed { throw ExitCode(RehearsalError.Kind.infrastructure.exitStatus) }
    }
}
