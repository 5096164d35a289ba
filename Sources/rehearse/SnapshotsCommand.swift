import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse snapshots`: the saved running states that warm starts restore.
struct SnapshotsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshots",
        abstract: "List the saved running machines that warm starts restore (identity, generation, size, age).",
        discussion: """
        The first machine of an identity (generation digest, memory, CPUs, accelerator, devices and \
        disks attached at boot, kernel command line, libvirt and QEMU versions, harness version) \
        keeps its running state once ready; later machines of that identity restore it with their \
        own overlay instead of booting. They live in <state>/saved, are bounded by \
        $REHEARSE_SAVED_STATES_GIB (default 8; the oldest go first) and are removed by \
        `rehearse clean --snapshots`. `--cold` (or `cold_boot: true`) boots for real.
        """
    )

    @Flag(help: "Print JSON instead of a table.") var json = false
    @Flag(help: "Also print what went into each identity.") var verbose = false
    @Flag(help: "Read every saved state again and check it against its size and digests (exit 1 if any changed).") var verify = false

    func run() throws {
        let store = SavedStateStore(state: .fromEnvironment())
        let all = store.list()
        if verify { return try GenerationsCommand.report(all.map { ($0.id + " " + $0.generation, store.verify($0.id)) }, what: "saved state") }
        if json {
            print(String(decoding: try JSONCoding.encoder.encode(all), as: UTF8.self))
            return
        }
        guard !all.isEmpty else {
            print("no saved states yet: the first run of a scenario keeps its machine's state")
            return
        }
        let rows = [["ID", "GENERATION", "MEMORY", "CPUS", "SIZE", "COLD BOOT", "MADE"]] + all.map { s in
            [s.id, "\(s.generation) \(s.generationDigest.prefix(12))", "\(s.memoryMiB) MiB", "\(s.cpus)",
             Formatting.size(s.totalBytes), String(format: "%.1f s", s.coldBootSeconds), Formatting.date(s.createdAt)]
        }
        GenerationsCommand.printTable(rows)
        if verbose {
            for s in all { print("\n\(s.id):\n" + s.inputs.map { "  \($0)" }.joined(separator: "\n")) }
        }
        print("\n\(all.count) saved state(s), \(Formatting.size(all.reduce(0) { $0 + $1.totalBytes })) in \(store.root.path)")
    }
}
