import Foundation
import Synchronization

/// A recipe that builds generations: a directory holding `build.sh`, which
/// answers `build.sh inputs` (the identity of everything it downloads),
/// `build.sh generations` (the names it builds; optional) and
/// `build.sh build OUT` (writes the files and `image.json`).
///
/// The built image is cached under the state directory by a digest of the
/// recipe's files and its inputs, so a changed recipe or a new kernel package
/// builds a new image and an unchanged one is reused.
public struct ImageRecipe: Sendable {
    public let name: String
    public let directory: URL

    var script: URL { directory.appendingPathComponent("build.sh") }

    /// Finds the recipe that builds `reference`: a path to a recipe
    /// directory, a recipe name, or the name of a generation that a recipe in
    /// one of `searchPaths` (folders that hold recipes) builds. Returns the
    /// recipe and the generation's name (nil: the recipe's first).
    public static func resolve(_ reference: String, searchPaths: [URL]) throws -> (recipe: ImageRecipe, generation: String?) {
        let fm = FileManager.default
        if reference.contains("/") {
            let url = URL(fileURLWithPath: reference).standardizedFileURL
            guard fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) else {
                throw RehearsalError.imageNotFound(reference, searched: [url.path])
            }
            return (ImageRecipe(name: url.lastPathComponent, directory: url), nil)
        }
        for dir in searchPaths {
            let url = dir.appendingPathComponent(reference)
            if fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) {
                let recipe = ImageRecipe(name: reference, directory: url.standardizedFileURL)
                return (recipe, recipe.generationNames().contains(reference) ? reference : nil)
            }
        }
        for dir in searchPaths {
            for sub in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() {
                let url = dir.appendingPathComponent(sub)
                guard fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) else { continue }
                let recipe = ImageRecipe(name: sub, directory: url.standardizedFileURL)
                if recipe.generationNames().contains(reference) { return (recipe, reference) }
            }
        }
        throw RehearsalError.imageNotFound(reference, searched: searchPaths.map(\.path))
    }

    /// Where recipes are looked for: `$REHEARSE_IMAGES`, then an `Images/`
    /// beside or above the scenario file, then `./Images`, then one above the
    /// `rehearse` executable (a source checkout).
    public static func searchPaths(scenarioFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> [URL] {
        var out: [URL] = []
        if let e = environment["REHEARSE_IMAGES"], !e.isEmpty {
            out += e.split(separator: ":").map { URL(fileURLWithPath: String($0)) }
        }
        func ancestors(of url: URL) -> [URL] {
            var list: [URL] = [], u = url.standardizedFileURL
            while u.path != "/" { list.append(u.appendingPathComponent("Images")); u = u.deletingLastPathComponent() }
            return list
        }
        if let f = scenarioFile { out += ancestors(of: URL(fileURLWithPath: f).deletingLastPathComponent()) }
        out.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Images"))
        out += ancestors(of: URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        var seen = Set<String>()
        return out.filter { seen.insert($0.path).inserted && FileManager.default.fileExists(atPath: $0.path) }
    }

    /// The digest of the recipe's files and of what `build.sh inputs` names.
    public func digest(state: StateDirectory) throws -> String {
        let fm = FileManager.default
        let files = (fm.enumerator(atPath: directory.path)?.compactMap { $0 as? String } ?? [])
            .filter { !$0.hasPrefix(".") }
            .sorted()
        var manifest = "recipe \(name)\n"
        for f in files {
            let url = directory.appendingPathComponent(f)
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue,
                  let data = fm.contents(atPath: url.path) else { continue }
            manifest += "file \(f) \(SHA256.hex(data))\n"
        }
        let inputs: String
        do {
            inputs = try HostCommand.run([script.path, "inputs"], environment: environment(state))
        } catch {
            throw RehearsalError.imageBuildFailed(name, "listing its inputs: \(error)")
        }
        manifest += inputs
        return SHA256.hex(Data(manifest.utf8))
    }

    /// The recipe's environment: where downloads are kept between builds.
    func environment(_ state: StateDirectory) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["REHEARSE_DOWNLOAD_CACHE"] = state.downloads.path
        return env
    }

    /// The cache entry for this recipe at `digest`.
    public func cacheDirectory(in state: StateDirectory, digest: String) -> URL {
        state.images.appendingPathComponent("\(name)-\(digest.prefix(16))")
    }

    /// Builds of the recipes in `searchPaths` that their current files and
    /// inputs would no longer make (older digests), which `rehearse clean
    /// --images` removes. A recipe being built right now (its lock held) is
    /// left alone; so is every build of a recipe that isn't found.
    public static func staleBuilds(state: StateDirectory, searchPaths: [URL]) -> [URL] {
        let fm = FileManager.default
        var recipes: [String: ImageRecipe] = [:]
        for dir in searchPaths {
            for sub in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []) where recipes[sub] == nil {
                let url = dir.appendingPathComponent(sub)
                if fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) {
                    recipes[sub] = ImageRecipe(name: sub, directory: url.standardizedFileURL)
                }
            }
        }
        var stale: [URL] = []
        for (name, recipe) in recipes.sorted(by: { $0.key < $1.key }) {
            guard !FileLock.isHeld(path: state.images.appendingPathComponent("\(name).lock").path),
                  let current = try? recipe.cacheDirectory(in: state, digest: recipe.digest(state: state)).lastPathComponent else { continue }
            for entry in ((try? fm.contentsOfDirectory(atPath: state.images.path)) ?? []).sorted()
            where entry.hasPrefix(name + "-") && entry != current && entry.dropFirst(name.count + 1).allSatisfy(\.isHexDigit) {
                stale.append(state.images.appendingPathComponent(entry))
            }
        }
        return stale
    }

    /// The names of the generations it builds (`build.sh generations`); a
    /// recipe that doesn't say builds one generation named after itself.
    public func generationNames() -> [String] {
        // Asked for every reference a scenario makes: keep the answer per
        // build.sh content rather than start the script each time.
        let key = "\(script.path) \(FileManager.default.contents(atPath: script.path).map(SHA256.hex) ?? "")"
        if let known = Self.namesCache.withLock({ $0[key] }) { return known }
        let out = try? HostCommand.run([script.path, "generations"])
        let names = out?.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
        let answer = names.isEmpty ? [name] : names
        Self.namesCache.withLock { $0[key] = answer }
        return answer
    }

    private static let namesCache = Mutex<[String: [String]]>([:])

    /// Returns the recipe's built output, building it first when needed.
    /// Build progress lines (`==> …` from the recipe) go to `progress`.
    public func build(state: StateDirectory, progress: @escaping @Sendable (String) -> Void) throws -> BuiltRecipe {
        let digest = try digest(state: state)
        let dir = cacheDirectory(in: state, digest: digest)
        if let built = try? GenerationStore.load(directory: dir) { return built }
        _ = try state.create(state.images)
        let lock = try FileLock.acquire(path: state.images.appendingPathComponent("\(name).lock").path)
        defer { lock.unlock() }
        // Another process may have built it while we waited for the lock.
        if let built = try? GenerationStore.load(directory: dir) { return built }
        let partial = state.images.appendingPathComponent(".\(name)-\(digest.prefix(16)).partial-\(getpid())")
        try? FileManager.default.removeItem(at: partial)
        do {
            try HostCommand.run([script.path, "build", partial.path], environment: environment(state)) { line in
                progress(line.hasPrefix("==> ") ? String(line.dropFirst(4)) : line)
            }
            progress("compute the generations' digests")
            try GenerationStore.seal(directory: partial, final: dir, recipe: name, recipeDigest: digest)
        } catch {
            try? FileManager.default.removeItem(at: partial)
            if let e = error as? RehearsalError { throw e }
            throw RehearsalError.imageBuildFailed(name, "\(error)", underlying: error as? any Error & Sendable)
        }
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.moveItem(at: partial, to: dir)
        return try GenerationStore.load(directory: dir)
    }

    /// The generation `name` (or the recipe's first), building the recipe if needed.
    public func generation(_ name: String?, state: StateDirectory, progress: @escaping @Sendable (String) -> Void) throws -> Generation {
        let built = try build(state: state, progress: progress)
        guard let g = name.map({ built.generation(named: $0) }) ?? built.generations.first else {
            throw RehearsalError.imageInvalid(built.directory.path, "recipe \(self.name) built no generation named \(name ?? "?")")
        }
        return g
    }
}
