import Foundation

/// Fetches on the host what an APT command would download, into
/// Rehearsal's own cache and never the host's, using the host's (or the
/// tree's) own sources, package lists and dpkg database as they are:
/// no `apt-get update`, so the guest, which has the same lists, asks for
/// exactly what was fetched.
///
/// APT is pointed at the tree with a configuration file of its own
/// (`APT_CONFIG`): `Dir` is the tree, the archive cache and a copy of the
/// package lists are ours, the binary
/// caches APT would write under `/var/cache/apt` are off, and the tree's
/// hooks are cleared (download-only runs no dpkg, but a tree's config is
/// not ours to trust on the host).
struct AptDownload {
    let root: String
    /// `…/archives`, where the .debs go.
    let archives: URL

    /// A copy of the tree's package lists: APT sets up (chmods) its lists
    /// directory even when it only reads it.
    var lists: URL { archives.deletingLastPathComponent().appendingPathComponent("lists") }

    func configuration() -> String {
        let dir = root.hasSuffix("/") ? root : root + "/"
        return """
        Dir "\(dir)";
        Dir::State::status "\(dir)var/lib/dpkg/status";
        Dir::State::lists "\(lists.path)/";
        Dir::Cache::Archives "\(archives.path)/";
        Dir::Cache::pkgcache "";
        Dir::Cache::srcpkgcache "";
        Dir::Log "\(archives.deletingLastPathComponent().path)/log/";
        APT::Sandbox::User "root";
        Debug::NoLocking "true";
        #clear DPkg::Pre-Invoke;
        #clear DPkg::Post-Invoke;
        #clear DPkg::Pre-Install-Pkgs;
        #clear APT::Update::Pre-Invoke;
        #clear APT::Update::Post-Invoke;

        """
    }

    /// Runs the download; returns the .debs in the cache afterwards and
    /// APT's output. Throws a scenario failure with APT's own message when
    /// it can't fetch everything.
    func run(_ command: AptCommand) throws -> (debs: [String], output: String) {
        let fm = FileManager.default
        try fm.createDirectory(at: archives.appendingPathComponent("partial"), withIntermediateDirectories: true)
        let hostLists = URL(fileURLWithPath: root).appendingPathComponent("var/lib/apt/lists").path
        do {
            try HostCommand.run(["rsync", "-a", "--delete", "--exclude", "lock", "--exclude", "partial/", "--exclude", "auxfiles/", hostLists + "/", lists.path + "/"], timeout: 600)
        } catch {
            throw RehearsalError.infrastructure("copying APT's lists from \(hostLists) failed: \(error)")
        }
        let config = archives.deletingLastPathComponent().appendingPathComponent("apt.conf")
        try Data(configuration().utf8).write(to: config)
        var env = ProcessInfo.processInfo.environment
        env["APT_CONFIG"] = config.path
        env["DEBIAN_FRONTEND"] = "noninteractive"
        env["LC_ALL"] = "C"
        let output: String
        do {
            output = try HostCommand.run(command.downloadArgv, environment: env, timeout: 3600)
        } catch let f as HostCommand.Failure {
            let said = f.output.split(separator: "\n").filter { $0.hasPrefix("E:") || $0.hasPrefix("W:") }.joined(separator: "\n")
            throw RehearsalError(.aptDownload, "APT could not fetch what `\(command.description)` needs: \(said.isEmpty ? f.description : said)", evidence: f.output)
        }
        let debs = ((try? fm.contentsOfDirectory(atPath: archives.path)) ?? []).filter { $0.hasSuffix(".deb") }.sorted()
        return (debs, output)
    }
}

extension RehearsalError.Code {
    /// APT's download-only run on the host failed: the preview can't rehearse what the host would do.
    public static let aptDownload = RehearsalError.Code("APT download", .failure)
}
