import Foundation

/// The built generations under `<state>/images`: one directory per recipe
/// build, holding the recipe's files, its `image.json` and the
/// `generations.json` that `seal` writes once the build is complete.
public enum GenerationStore {
    static let sealFile = "generations.json"

    /// Reads a finished build.
    public static func load(directory: URL) throws -> BuiltRecipe {
        let data = try Data(contentsOf: directory.appendingPathComponent(sealFile))
        let sealed = try decoder.decode(Sealed.self, from: data)
        for g in sealed.generations {
            for path in [g.kernel, g.initrd, g.disk].compactMap({ $0 }) where !FileManager.default.fileExists(atPath: path) {
                throw RehearsalError.imageInvalid(directory.path, "\(path) is missing")
            }
        }
        return BuiltRecipe(recipe: sealed.recipe, directory: directory, generations: sealed.generations,
                           payloads: sealed.payloads.mapValues { directory.appendingPathComponent($0) })
    }

    /// Turns a recipe's output in `directory` into generations: checks the
    /// manifest, computes each generation's digest, records paths as they
    /// will be under `final`, and makes every file read-only.
    static func seal(directory: URL, final: URL, recipe: String, recipeDigest: String) throws {
        let manifestData: Data
        let manifest: RecipeManifest
        do {
            manifestData = try Data(contentsOf: directory.appendingPathComponent("image.json"))
            manifest = try JSONDecoder().decode(RecipeManifest.self, from: manifestData)
        } catch {
            throw RehearsalError.imageInvalid(directory.path, "no readable image.json (\(error))")
        }
        guard !manifest.generations.isEmpty else { throw RehearsalError.imageInvalid(directory.path, "image.json names no generation") }
        var fileDigests: [String: String] = [:]
        func fileDigest(_ rel: String) throws -> String {
            if let d = fileDigests[rel] { return d }
            let path = directory.appendingPathComponent(rel).path
            guard FileManager.default.fileExists(atPath: path) else { throw RehearsalError.imageInvalid(directory.path, "\(rel) is missing") }
            let d = try SHA256.file(path)
            fileDigests[rel] = d
            return d
        }
        var out: [Generation] = []
        var digestsByName: [String: String] = [:]
        let now = Date()
        for e in manifest.generations {
            let boot = e.boot ?? .direct
            if boot == .direct, e.kernel == nil { throw RehearsalError.imageInvalid(directory.path, "generation \(e.name) boots directly but names no kernel") }
            if boot == .firmware, e.disk == nil { throw RehearsalError.imageInvalid(directory.path, "generation \(e.name) boots by firmware but has no disk") }
            let cmdline = try e.cmdline.map { rel -> String in
                try String(contentsOf: directory.appendingPathComponent(rel), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            var identity = "name \(e.name)\nversion \(e.version ?? "")\nboot \(boot.rawValue)\ncmdline \(cmdline ?? "")\n"
            identity += "parent \(e.parent.flatMap { digestsByName[$0] } ?? e.parent ?? "")\n"
            var size: Int64 = 0
            for (role, rel) in [("kernel", e.kernel), ("initrd", e.initrd), ("disk", e.disk)] {
                guard let rel else { continue }
                identity += "\(role) \(try fileDigest(rel))\n"
                size += (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(rel).path)[.size] as? Int64) ?? 0
            }
            let digest = SHA256.hex(Data(identity.utf8))
            digestsByName[e.name] = digest
            func path(_ rel: String?) -> String? { rel.map { final.appendingPathComponent($0).path } }
            out.append(Generation(name: e.name, version: e.version ?? "1", boot: boot, kernel: path(e.kernel), initrd: path(e.initrd),
                                  cmdline: cmdline, kernelRelease: e.kernelRelease, disk: path(e.disk), parent: e.parent,
                                  description: e.description, digest: digest, recipe: recipe, recipeDigest: recipeDigest,
                                  directory: final.path, builtAt: now, size: size))
        }
        let sealed = Sealed(recipe: recipe, generations: out, payloads: manifest.payloads ?? [:])
        try encoder.encode(sealed).write(to: directory.appendingPathComponent(sealFile))
        // Built files are never written again.
        let fm = FileManager.default
        for f in fm.enumerator(atPath: directory.path)?.compactMap({ $0 as? String }) ?? [] {
            var isDir: ObjCBool = false
            let p = directory.appendingPathComponent(f).path
            if fm.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue {
                try? fm.setAttributes([.posixPermissions: 0o444], ofItemAtPath: p)
            }
        }
    }

    /// Every built generation, newest build first.
    public static func all(state: StateDirectory) -> [Generation] {
        let dirs = (try? FileManager.default.contentsOfDirectory(at: state.images, includingPropertiesForKeys: nil)) ?? []
        return dirs.filter { !$0.lastPathComponent.hasPrefix(".") }
            .compactMap { try? load(directory: $0) }
            .flatMap(\.generations)
            .sorted { ($0.builtAt, $0.name) > ($1.builtAt, $1.name) }
    }

    /// The newest built generation called `reference`, or the one whose digest starts with it.
    public static func find(_ reference: String, state: StateDirectory) -> Generation? {
        let all = all(state: state)
        return all.first { $0.name == reference }
            ?? (reference.count >= 6 ? all.first { $0.digest.hasPrefix(reference.lowercased()) } : nil)
    }

    struct Sealed: Codable {
        var recipe: String
        var generations: [Generation]
        var payloads: [String: String]
    }

    static var encoder: JSONEncoder { JSONCoding.encoder }
    static var decoder: JSONDecoder { JSONCoding.decoder }
}
