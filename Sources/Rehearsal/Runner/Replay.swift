import Foundation

/// A bundle unpacked to run its scenario again (`rehearse replay BUNDLE`):
/// the same scenario file, on the generations it booted (found by digest,
/// an older build if need be) and its payload (found by digest, or the
/// bundle's own copy). What cannot be found is refused before anything boots.
public struct Replay: Sendable {
    public let bundle: Bundle
    /// Where the bundle was unpacked; `close()` removes it.
    public let directory: URL
    let prepared: Runner.Prepared

    /// Generation name → digest, for `Runner.Options.pins`.
    public var pins: [String: String] {
        Dictionary(bundle.generations.map { ($0.name, $0.digest) }, uniquingKeysWith: { first, _ in first })
    }

    /// Unpacks and reads `path`; throws a bad-input error naming it when it is no bundle.
    public static func open(_ path: String, state: StateDirectory) throws -> Replay {
        let bad = { (why: String) in RehearsalError(.badScenario, why, file: path) }
        guard FileManager.default.isReadableFile(atPath: path) else { throw bad("no bundle here (give the bundle.tar.gz a failed run left)") }
        let dir = try state.create(state.root.appendingPathComponent("replays/\(Runner.newRunID())"))
        do {
            do {
                try HostCommand.run(["tar", "--no-same-owner", "--no-same-permissions", "--force-local", "-xzf", path, "-C", dir.path])
            } catch {
                throw bad("not a bundle: not a gzipped tar archive (\(error))")
            }
            guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("bundle.json").path) else {
                throw bad("not a rehearse bundle: it holds no bundle.json")
            }
            let bundle: Bundle
            do { bundle = try JSONCoding.decoder.decode(Bundle.self, from: data) } catch { throw bad("its bundle.json is unreadable (\(error))") }
            guard bundle.format == 1 else { throw bad("bundle format \(bundle.format) (made by Rehearsal \(bundle.rehearsal)) is not one this Rehearsal (\(Version.rehearsal)) reads") }
            guard let text = try? String(contentsOf: dir.appendingPathComponent("scenario.yaml"), encoding: .utf8) else {
                throw bad("the bundle holds no scenario file: scenario \(bundle.scenario) was written in Swift (run its program again)")
            }
            // Parsed as if from where it ran, so that its relative paths mean what they meant.
            let scenario = try ScenarioParser.parse(text: text, file: bundle.file)
            // What ran, which a gate's candidate or a compare side may have put in place of
            // the file's `machine:` (of the machines `replaced` names, when it has several).
            let ran = bundle.machine["system"] ?? bundle.machine["image"]
            let candidate: String?, replaced: [String]
            if scenario.hasSeveralMachines {
                // Said outright: `replaced` is there exactly when a candidate was.
                replaced = bundle.machine["replaced"]?.split(separator: ",").map(String.init) ?? []
                candidate = replaced.isEmpty ? nil : ran
            } else {
                replaced = []
                candidate = ran != nil && ran != scenario.machine.image ? ran : nil
            }
            let prepared = try Runner.prepare(scenario, generation: candidate, machines: replaced)
            return Replay(bundle: bundle, directory: dir, prepared: prepared)
        } catch {
            try? FileManager.default.removeItem(at: dir)
            throw error
        }
    }

    /// The scenario ready to run on `runner` (made with `pins`): every
    /// generation found (built if need be) with the bundle's digest, and its
    /// payload the one it ran with. Throws a bad-input error for what is not here.
    public func prepare(on runner: Runner) async throws -> Runner.Prepared {
        for ref in prepared.generations.values { _ = try await runner.generation(ref) }
        for files in prepared.scenario.machines.compactMap(\.spec.system) {
            let g = try await offload { try Generation.of(files) }
            if let want = pins[g.name], want != g.digest {
                throw RehearsalError(.badImage, "\(files.path) is not the system the bundle ran: its digest is \(g.shortDigest), not \(want.prefix(12))")
            }
        }
        // The bundle's payload is its subject machine's (the one it describes).
        let subject = prepared.subjectIndex
        guard let want = bundle.payload else { return prepared }
        let here = try await runner.payloadDirectory(prepared.role(prepared.scenario.machines[subject].name, network: nil))
        if let here, (try? Bundle.treeDigest(here)) == want.digest { return prepared }
        if bundle.payloadIncluded {
            let copy = directory.appendingPathComponent("payload")
            // The guest gets this directory: no link in it may lead out of it.
            let inside = copy.resolvingSymlinksInPath().path + "/"
            for rel in FileManager.default.enumerator(atPath: copy.path)?.compactMap({ $0 as? String }) ?? []
            where !(copy.appendingPathComponent(rel).resolvingSymlinksInPath().path + "/").hasPrefix(inside) {
                throw RehearsalError(.badScenario, "the bundle's payload has a link leading out of it: \(rel)", file: bundle.file)
            }
            var p = prepared
            p.scenario.machines[subject].spec.payload = .directory(directory.appendingPathComponent("payload").path)
            return p
        }
        throw RehearsalError(.badScenario, "its payload (\(want.name)) is not the one the bundle ran: \(here.map { "\($0.path) has other files" } ?? "it is not here")",
                             file: bundle.file)
    }

    /// Removes the unpacked bundle.
    public func close() { try? FileManager.default.removeItem(at: directory) }
}
