import ArgumentParser
import Foundation
import Rehearsal
import RehearsalProgram

/// `rehearse generations`: the built generations, and one in detail.
struct GenerationsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generations",
        abstract: "List the built generations (name, version, digest, parent, size).",
        discussion: """
        A generation is an immutable bootable system identified by its digest: boot mode, \
        kernel/initrd/command line where it boots directly, base disk, name, version and the \
        generation it was derived from. Recipes under Images/ build them (`rehearse image build NAME`). \
        Newest builds come first; older builds of the same name stay listed below the newest.
        """,
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the built generations.")
        @Flag(help: "Print JSON instead of a table.") var json = false
        @Flag(help: "Read every generation's files again and check them against its digest (exit 1 if any changed).") var verify = false

        func run() throws {
            let all = GenerationStore.all(state: .fromEnvironment())
            if verify { return try GenerationsCommand.report(zip(all, GenerationStore.verify(all)).map { ($0.name + " " + $0.shortDigest, $1) }, what: "generation") }
            if json {
                print(String(decoding: try GenerationsCommand.encoder.encode(all), as: UTF8.self))
                return
            }
            guard !all.isEmpty else {
                print("no generations built yet: `rehearse image build debian` (or run a scenario) builds some")
                return
            }
            let rows = [["NAME", "VERSION", "DIGEST", "BOOT", "PARENT", "SIZE", "BUILT"]] + all.map { g in
                [g.name, g.version, g.shortDigest, g.boot.rawValue, g.parent ?? "-", Formatting.size(g.size),
                 Formatting.date(g.builtAt)]
            }
            GenerationsCommand.printTable(rows)
        }
    }

    /// Prints one line per checked thing ("ok NAME", or what is wrong), then
    /// a count; exits 1 when anything is wrong. Shared with `snapshots --verify`.
    static func report(_ results: [(name: String, problem: String?)], what: String) throws {
        for r in results { print(r.problem.map { "CHANGED  \($0)" } ?? "ok       \(r.name)") }
        let bad = results.filter { $0.problem != nil }.count
        print("\(results.count) \(what)(s) checked, \(bad == 0 ? "all intact" : "\(bad) changed")")
        if bad > 0 { throw ExitCode(1) }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one generation (by name: the newest build; or by digest prefix).")
        @Argument(help: "A generation name or digest prefix (6 characters or more).") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard let g = GenerationStore.find(name, state: .fromEnvironment()) else {
                throw RehearsalError(.unknownImage, "no built generation `\(name)` (see `rehearse generations`; `rehearse image build \(name)` builds it)")
            }
            if json {
                print(String(decoding: try GenerationsCommand.encoder.encode(g), as: UTF8.self))
                return
            }
            let fields: [(String, String?)] = [
                ("name", g.name), ("version", g.version), ("digest", g.digest), ("description", g.description),
                ("boot", g.boot == .direct ? "direct (kernel, initrd and command line handed to libvirt)" : "firmware (BIOS, then the disk's bootloader)"),
                ("kernel release", g.kernelRelease), ("kernel", g.kernel), ("initrd", g.initrd), ("cmdline", g.cmdline),
                ("disk", g.disk), ("parent", g.parent), ("recipe", "\(g.recipe) (inputs \(g.recipeDigest.prefix(16)))"),
                ("built", Formatting.date(g.builtAt)), ("size", Formatting.size(g.size)),
            ]
            for (k, v) in fields { if let v { print("\(k.padding(toLength: 15, withPad: " ", startingAt: 0)) \(v)") } }
        }
    }

    static var encoder: JSONEncoder { JSONCoding.encoder }

    /// Prints `rows` (the first is the header) in columns as wide as their widest cell.
    static func printTable(_ rows: [[String]]) {
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for r in rows {
            print(zip(r, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces))
        }
    }

}
