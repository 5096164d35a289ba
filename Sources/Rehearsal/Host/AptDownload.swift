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

    /// Where lists, logs and APT's configuration file go: beside the payload directory that holds `archives`.
    var work: URL { archives.deletingLastPathComponent().deletingLastPathComponent() }
    /// A copy of the tree's package lists: APT sets up (chmods) its lists
    /// directory even when it only reads it.
    var lists: URL { work.appendingPathComponent("lists") }

    /// What keeps APT off the host's files, given on the command line too:
    /// the tree's own apt.conf.d is read after `APT_CONFIG` and could set
    /// any of them back.
    var safety: [(String, String)] {
        [("Dir::Cache::Archives", archives.path + "/"), ("Dir::State::lists", lists.path + "/"),
         ("Dir::Cache::pkgcache", ""), ("Dir::Cache::srcpkgcache", ""), ("Dir::Log", work.appendingPathComponent("log").path + "/"),
         ("APT::Sandbox::User", "root"), ("Debug::NoLocking", "true")]
    }

    func configuration() -> String {
        let dir = root.hasSuffix("/") ? root : root + "/"
        return """
        Dir "\(dir)";
        Dir::State::status "\(dir)var/lib/dpkg/status";
        \(safety.map { "\($0.0) \"\($0.1)\";" }.joined(separator: "\n"))
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
        // This preview's packages only: what an earlier one fetched is not what this COMMAND needs.
        try? fm.removeItem(at: archives)
        try fm.createDirectory(at: archives.appendingPathComponent("partial"), withIntermediateDirectories: true)
        let hostLists = URL(fileURLWithPath: root).appendingPathComponent("var/lib/apt/lists").path
        do {
            try HostCommand.run(["rsync", "-a", "--delete", "--exclude", "lock", "--exclude", "partial/", "--exclude", "auxfiles/", hostLists + "/", lists.path + "/"], timeout: 600)
        } catch {
            throw RehearsalError.infrastructure("copying APT's lists from \(hostLists) failed: \(error)")
        }
        let config = work.appendingPathComponent("apt.conf")
        try Data(configuration().utf8).write(to: config)
        var env = ProcessInfo.processInfo.environment
        env["APT_CONFIG"] = config.path
        env["DEBIAN_FRONTEND"] = "noninteractive"
        env["LC_ALL"] = "C"
        let output: String
        do {
            output = try HostCommand.run(command.downloadArgv + safety.flatMap { ["-o", "\($0.0)=\($0.1)"] }, environment: env, timeout: 3600)
        } catch let f as HostCommand.Failure {
            let said = f.output.split(separator: "\n").filter { $0.hasPrefix("E:") || $0.hasPrefix("W:") }.joined(separator: "\n")
            throw RehearsalError(.aptDownload, "APT could not fetch what `\(command.description)` needs: \(said.isEmpty ? f.description : said)", evidence: f.output)
        }
        try? fm.removeItem(at: archives.appendingPathComponent("partial"))
        let debs = ((try? fm.contentsOfDirectory(atPath: archives.path)) ?? []).filter { $0.hasSuffix(".deb") }.sorted()
        return (debs, output)
    }
}

extension RehearsalError.Code {
    /// APT's download-only run on the host failed: the preview can't rehearse what the host would do.
    public static let aptDownload = RehearsalError.Code("APT download", .failure)
}
