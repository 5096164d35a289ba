import Foundation
import Testing
@testable import Rehearsal

/// A Debian 12 host for the capture and preview tests: the debian recipe's
/// tree, unpacked and made to look like a host of its own, and its local
/// APT repository served over HTTP (APT downloads nothing from `file:`
/// sources, so a download-only run needs a real server).
enum HostTree {
    /// The debian recipe's build: its tree (payload host-tree) and its repository (payload repo).
    static func debian() async throws -> BuiltRecipe {
        try await TestGuest.runner.build(try ImageRecipe.resolve("debian", searchPaths: [TestGuest.repo.appendingPathComponent("Images")]).recipe)
    }

    /// The debian tree, unpacked and turned into a stand-in host: its own
    /// fstab, no harness shell, a network service and a hardware service
    /// that fail outside a VM of ours, a cache, scratch, and a secret.
    static func make() async throws -> URL {
        let built = try await debian()
        let tarball = try #require(built.payloads["host-tree"]).appendingPathComponent("tree.tar.zst")
        let root = TestGuest.runs.appendingPathComponent("host-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try HostCommand.run(["tar", "-C", root.path, "-I", "zstd", "--numeric-owner", "--xattrs", "--acls", "-xpf", tarball.path], timeout: 600)
        let setup = """
        set -e
        cd "$1"
        rm -r etc/systemd/system/serial-getty@ttyS1.service.d etc/systemd/system/getty.target.wants/serial-getty@ttyS1.service
        printf 'UUID=0b1c1d2e-0000-4000-8000-000000000001 / ext4 errors=remount-ro 0 1\\nUUID=0b1c1d2e-0000-4000-8000-000000000002 none swap sw 0 0\\n' > etc/fstab
        printf '[Unit]\\nDescription=the host network\\n[Service]\\nType=oneshot\\nExecStart=/bin/false\\n[Install]\\nWantedBy=multi-user.target\\n' > etc/systemd/system/networking.service
        printf '[Unit]\\nDescription=disk health\\n[Service]\\nExecStart=/bin/false\\n[Install]\\nWantedBy=multi-user.target\\n' > etc/systemd/system/smartmontools.service
        ln -s /etc/systemd/system/networking.service etc/systemd/system/multi-user.target.wants/networking.service
        ln -s /etc/systemd/system/smartmontools.service etc/systemd/system/multi-user.target.wants/smartmontools.service
        mkdir -p srv/secret var/cache/apt/archives
        echo key > srv/secret/key
        head -c 1048576 /dev/zero > var/cache/apt/archives/big_1.0_all.deb
        echo scratch > tmp/scratch
        """
        try HostCommand.run(["sh", "-c", setup, "sh", root.path])
        return root
    }

    /// What must not change on the host: every path's type, mode, owner, size, times (ctime too), and the bytes of its state.
    static func fingerprint(_ root: URL) throws -> String {
        try HostCommand.run(["sh", "-c", "cd \"$1\" && find . -printf '%P %y %m %U %G %s %T@ %C@\\n' | LC_ALL=C sort | sha256sum && tar -cf - etc var/lib/dpkg var/lib/apt var/cache/apt | sha256sum", "sh", root.path], timeout: 600)
    }


    /// Serves `directory` on 127.0.0.1 (a port the system picks); returns the server and its base URL.
    /// The server writes its port on stdout once it listens: reading that line is the wait.
    static func serve(_ directory: URL) throws -> (Process, String) {
        let script = """
        import http.server, functools, sys
        h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
        h.log_message = lambda *a: None
        s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """
        let p = Process()
        let out = Pipe()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, directory.path]
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Blocks until the line arrives, or returns empty when the server died first.
        var line = Data()
        while !line.contains(10) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            p.terminate()
            throw RehearsalError.infrastructure("the test's HTTP server did not start")
        }
        return (p, "http://127.0.0.1:\(port)")
    }

    /// A flat APT repository in `dir` with the debs of `repo` that `keep` accepts (by file name).
    static func repository(from repo: URL, into dir: URL, keep: (String) -> Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let packages = try String(contentsOf: repo.appendingPathComponent("Packages"), encoding: .utf8)
        let stanzas = packages.components(separatedBy: "\n\n").filter { st in
            guard let f = st.split(separator: "\n").first(where: { $0.hasPrefix("Filename: ./") }) else { return false }
            let name = String(f.dropFirst("Filename: ./".count))
            guard keep(name) else { return false }
            try? fm.createSymbolicLink(at: dir.appendingPathComponent(name), withDestinationURL: repo.appendingPathComponent(name))
            return true
        }
        try Data((stanzas.joined(separator: "\n\n") + "\n").utf8).write(to: dir.appendingPathComponent("Packages"))
        try HostCommand.run(["sh", "-c", "cd \"$1\" && { echo 'Origin: Rehearsal tests'; echo 'Suite: rehearse'; echo 'Codename: rehearse'; echo 'Architectures: amd64 all'; echo 'Date: Thu, 01 Jan 2026 00:00:00 UTC'; echo 'SHA256:'; echo \" $(sha256sum Packages | cut -d' ' -f1) $(stat -c %s Packages) Packages\"; } > Release", "sh", dir.path])
    }

    /// Points the tree's APT at `url` and updates its lists (the test's set-up of its host, not the preview's doing).
    static func useSource(_ url: String, in root: URL) throws {
        try Data("deb [trusted=yes] \(url) ./\n".utf8).write(to: root.appendingPathComponent("etc/apt/sources.list"))
        let conf = TestGuest.runs.appendingPathComponent("apt-setup-\(UUID().uuidString.prefix(8)).conf")
        defer { try? FileManager.default.removeItem(at: conf) }
        try Data("Dir \"\(root.path)/\";\nDir::State::status \"\(root.path)/var/lib/dpkg/status\";\nAPT::Sandbox::User \"root\";\n".utf8).write(to: conf)
        var env = ProcessInfo.processInfo.environment
        env["APT_CONFIG"] = conf.path
        try HostCommand.run(["apt-get", "update", "-q"], environment: env, timeout: 300)
    }

    /// The version of `package` the tree's dpkg database has installed.
    static func installedVersion(_ package: String, in root: URL) throws -> String {
        try HostCommand.run(["dpkg-query", "--admindir=\(root.path)/var/lib/dpkg", "-W", "-f=${Version}", package]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
