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
            var files: [(role: String, digest: String)] = []
            var size: Int64 = 0
            for (role, rel) in [("kernel", e.kernel), ("initrd", e.initrd), ("disk", e.disk)] {
                guard let rel else { continue }
                files.append((role, try fileDigest(rel)))
                size += (try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(rel).path)[.size] as? Int64) ?? 0
            }
            let digest = Self.digest(name: e.name, version: e.version ?? "", boot: boot, cmdline: cmdline,
                                     parent: e.parent.flatMap { digestsByName[$0] } ?? e.parent, files: files)
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

    /// A generation's digest: SHA-256 over its name, version, boot mode,
    /// command line, parent (its digest when built alongside) and the
    /// SHA-256 of each of its files.
    static func digest(name: String, version: String, boot: Generation.BootMode, cmdline: String?, parent: String?,
                       files: [(role: String, digest: String)]) -> String {
        var identity = "name \(name)\nversion \(version)\nboot \(boot.rawValue)\ncmdline \(cmdline ?? "")\n"
        identity += "parent \(parent ?? "")\n"
        for f in files { identity += "\(f.role) \(f.digest)\n" }
        return SHA256.hex(Data(identity.utf8))
    }

    /// Reads the files of `generations` again and checks that they still
    /// give each one's digest: per generation nil when they do, else what is
    /// wrong (a built file was written). A file shared by several (a parent's
    /// disk) is read once.
    public static func verify(_ generations: [Generation]) -> [String?] {
        var digests: [String: String?] = [:]
        var manifests: [String: [Generation]] = [:]
        func fileDigest(_ path: String) -> String? {
            if let d = digests[path] { return d }
            let d = try? SHA256.file(path)
            digests[path] = d
            return d
        }
        return generations.map { g in
            // A host file or a Nix closure is not ours to seal; a capture's digest is its host's file manifest, not its disk's bytes.
            guard g.recipe != "-", g.recipe != "host", g.nixStore == nil else { return nil }
            var files: [(role: String, digest: String)] = []
            for (role, path) in [("kernel", g.kernel), ("initrd", g.initrd), ("disk", g.disk)] {
                guard let path else { continue }
                // Removed with its build (`clean --images`): nothing left to be wrong.
                guard FileManager.default.fileExists(atPath: path) else { return nil }
                guard let d = fileDigest(path) else { return "\(g.name): its \(role) \(path) cannot be read" }
                files.append((role, d))
            }
            if manifests[g.directory] == nil { manifests[g.directory] = (try? load(directory: URL(fileURLWithPath: g.directory)).generations) ?? [] }
            // As `seal`: a parent built earlier in the same manifest counts by digest, any other by name.
            let earlier = manifests[g.directory]!.prefix { $0.name != g.name }
            let parent = g.parent.map { p in earlier.first { $0.name == p }?.digest ?? p }
            // A recipe that gave no version is sealed with an empty one and recorded as "1".
            let versions = g.version == "1" ? ["1", ""] : [g.version]
            let matches = versions.contains { digest(name: g.name, version: $0, boot: g.boot, cmdline: g.cmdline, parent: parent, files: files) == g.digest }
            return matches ? nil : "\(g.name) (\(g.shortDigest)): its files no longer give its digest: \(files.map(\.role).joined(separator: ", ")) in \(g.directory) were written"
        }
    }

    /// Every built generation, newest build first.
    public static func all(state: StateDirectory) -> [Generation] {
        func subdirectories(_ url: URL) -> [URL] {
            ((try? FileManager.default.contentsOfDirectory(at: url, includingPropertiesForKeys: nil)) ?? [])
                .filter { !$0.lastPathComponent.hasPrefix(".") }
        }
        // Recipe builds, and each capture's builds (`host/NAME/DIGEST`).
        let dirs = subdirectories(state.images) + subdirectories(state.hostCaptures).flatMap(subdirectories)
        return dirs
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
