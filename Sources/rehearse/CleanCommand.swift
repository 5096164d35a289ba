import ArgumentParser
import Foundation
import Libvirt
import Rehearsal

/// `rehearse clean`: remove what killed runs left behind.
struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Destroy machines that killed rehearse runs left behind.",
        discussion: """
        Only domains tagged as Rehearsal's are touched, and only when the rehearse process \
        that started them is gone. Embedded roots in use by a live rehearse are skipped.
        """
    )

    @Option(name: [.customShort("c"), .long], help: "Also sweep this libvirt URI (for example qemu:///system).")
    var connect: String?

    func run() throws {
        let state = StateDirectory.fromEnvironment()
        var removed: [Janitor.Removed] = []
        do {
            let (r, busy) = try Janitor.sweepEmbeddedRoots(state: state)
            removed += r
            for b in busy { print("skipped \(b): in use by a running rehearse") }
            if let uri = connect ?? ProcessInfo.processInfo.environment["LIBVIRT_DEFAULT_URI"] {
                let c = try Connection(uri: uri)
                removed += try Janitor.sweep(c, ownedByDeadOnly: true)
                c.close()
            }
        } catch {
            fail("clean: \(error)", status: 3)
        }
        for r in removed { print("removed \(r)") }
        print(removed.isEmpty ? "nothing to clean" : "removed \(removed.count) leftover(s)")
    }
}
