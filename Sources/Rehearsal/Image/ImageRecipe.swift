import Foundation

/// A recipe that builds an image: a directory holding `build.sh`, which
/// answers `build.sh inputs` (the identity of everything it downloads) and
/// `build.sh build OUT`.
///
/// The built image is cached under the state directory by a digest of the
/// recipe's files and its inputs, so a changed recipe or a new kernel package
/// builds a new image and an unchanged one is reused.
public struct ImageRecipe: Sendable {
    public let name: String
    public let directory: URL

    var script: URL { directory.appendingPathComponent("build.sh") }

    /// Finds `reference`: a path to a recipe directory, or a recipe name
    /// looked up in each of `searchPaths` (folders that hold recipes).
    public static func resolve(_ reference: String, searchPaths: [URL]) throws -> ImageRecipe {
        let fm = FileManager.default
        if reference.contains("/") {
            let url = URL(fileURLWithPath: reference).standardizedFileURL
            guard fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) else {
                throw ImageError.notFound(reference, searched: [url.path])
            }
            return ImageRecipe(name: url.lastPathComponent, directory: url)
        }
        for dir in searchPaths {
            let url = dir.appendingPathComponent(reference)
            if fm.fileExists(atPath: url.appendingPathComponent("build.sh").path) {
                return ImageRecipe(name: reference, directory: url.standardizedFileURL)
            }
        }
        throw ImageError.notFound(reference, searched: searchPaths.map(\.path))
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
            throw ImageError.buildFailed(name, "listing its inputs: \(error)")
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

    /// Returns the cached image, building it first when needed. Build
    /// progress lines (`==> …` from the recipe) go to `progress`.
    public func image(state: StateDirectory, progress: @escaping @Sendable (String) -> Void) throws -> BootImage {
        let digest = try digest(state: state)
        let dir = cacheDirectory(in: state, digest: digest)
        if let image = try? BootImage.load(directory: dir, digest: digest) { return image }
        _ = try state.create(state.images)
        let lock = try FileLock.acquire(path: state.images.appendingPathComponent("\(name).lock").path)
        defer { lock.unlock() }
        // Another process may have built it while we waited for the lock.
        if let image = try? BootImage.load(directory: dir, digest: digest) { return image }
        let partial = state.images.appendingPathComponent(".\(name)-\(digest.prefix(16)).partial-\(getpid())")
        try? FileManager.default.removeItem(at: partial)
        do {
            try HostCommand.run([script.path, "build", partial.path], environment: environment(state)) { line in
                progress(line.hasPrefix("==> ") ? String(line.dropFirst(4)) : line)
            }
        } catch {
            try? FileManager.default.removeItem(at: partial)
            throw ImageError.buildFailed(name, "\(error)")
        }
        // Built images are never written again: make every file read-only.
        for f in (try? FileManager.default.contentsOfDirectory(atPath: partial.path)) ?? [] {
            try? FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: partial.appendingPathComponent(f).path)
        }
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.moveItem(at: partial, to: dir)
        return try BootImage.load(directory: dir, digest: digest)
    }
}
