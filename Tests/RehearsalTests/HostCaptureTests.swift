import Foundation
import Testing
@testable import Rehearsal

/// What a capture copies and how its digest behaves, without copying a host.
@Suite struct HostCaptureTests {
    static let mountinfo = """
    27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
    22 27 0:21 / /proc rw,relatime - proc proc rw
    23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
    31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
    24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw
    50 27 254:1 / /boot rw,relatime - ext4 /dev/vda1 rw
    51 27 254:2 / /var rw,relatime - xfs /dev/vda2 rw
    52 51 0:40 / /var/lib/snapd/snap/core/1 ro,relatime - squashfs /dev/loop0 ro
    53 27 0:41 / /tmp rw,relatime shared:5 - tmpfs tmpfs rw
    54 27 0:42 / /srv/my\\040share rw,relatime - nfs4 server:/export rw
    60 27 254:3 / /srv/chroot rw,relatime - ext4 /dev/vdb rw
    61 60 0:43 / /srv/chroot/proc rw,relatime - proc proc rw
    """

    @Test func localDiskFilesystemsAreCopiedAndEverythingElseIsLeftOutEmpty() {
        let t = MountTable(mountinfo: Self.mountinfo)
        let out = t.leftOut(under: "/")
        #expect(out.map(\.point) == ["/proc", "/sys", "/dev", "/var/lib/snapd/snap/core/1", "/tmp", "/srv/my share", "/srv/chroot/proc"])
        #expect(out.first { $0.point == "/srv/my share" }?.type == "nfs4")
        // /boot, /var and /srv/chroot are local disks: copied as part of the tree.
        #expect(!out.contains { ["/boot", "/var", "/srv/chroot"].contains($0.point) })
    }

    @Test func aTreeSeesOnlyTheMountsBelowIt() {
        let out = MountTable(mountinfo: Self.mountinfo).leftOut(under: "/srv/chroot/")
        #expect(out.map(\.point) == ["/proc"])
    }

    @Test func thePlanLeavesOutScratchSwapStateAndWhatTheUserNames() throws {
        let state = StateDirectory(root: URL(fileURLWithPath: "/var/lib/rehearse"), images: URL(fileURLWithPath: "/srv/images"))
        let swaps = "Filename\tType\tSize\tUsed\tPriority\n/swapfile                               file\t\t1048572\t0\t-2\n/dev/vda3 partition 1 0 -3\n"
        let plan = try CapturePlan.make(root: "/", excludes: ["/home/*/Videos", "*.iso"], state: state,
                                        mounts: MountTable(mountinfo: Self.mountinfo), swaps: swaps)
        let patterns = plan.leftOut.map(\.pattern)
        for p in ["/tmp/*", "/var/tmp/*", "/var/cache/apt/archives/*.deb", "/proc/*", "/srv/my share/*", "/swapfile",
                  "/var/lib/rehearse", "/srv/images", "/home/*/Videos", "*.iso"] {
            #expect(patterns.contains(p), "\(p) is not left out: \(patterns)")
        }
        #expect(!patterns.contains("/dev/vda3"))
        #expect(!patterns.contains { $0.hasPrefix("/var/cache/debconf") })
        let argv = plan.rsync([], into: "/m")
        #expect(Array(argv.suffix(2)) == ["/", "/m/"])
        #expect(argv.contains("--numeric-ids") && argv.contains("-aHAXS") && argv.contains("--open-noatime"))
        #expect(throws: RehearsalError.self) { try CapturePlan.make(root: "/", excludes: [""], state: state, mounts: MountTable(mountinfo: "")) }
    }

    @Test func stateOutsideTheTreeIsNotInItsPlan() throws {
        let state = StateDirectory(root: URL(fileURLWithPath: "/var/lib/rehearse"))
        let plan = try CapturePlan.make(root: "/srv/tree", excludes: [], state: state, mounts: MountTable(mountinfo: ""), swaps: "")
        #expect(!plan.leftOut.contains { $0.why == "Rehearsal's state" })
        let inside = StateDirectory(root: URL(fileURLWithPath: "/srv/tree/root/.local/state/rehearse"))
        let plan2 = try CapturePlan.make(root: "/srv/tree", excludes: [], state: inside, mounts: MountTable(mountinfo: ""), swaps: "")
        #expect(plan2.leftOut.contains { $0.pattern == "/root/.local/state/rehearse" })
    }

    @Test func theManifestDigestIgnoresReadingButNotWriting() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("etc"), withIntermediateDirectories: true)
        let f = dir.appendingPathComponent("etc/config")
        try Data("a=1\n".utf8).write(to: f)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: "etc/config")
        let first = try HostCapture.manifestDigest(of: dir.path)
        _ = try Data(contentsOf: f)  // a read, an access time
        #expect(try HostCapture.manifestDigest(of: dir.path) == first)
        chmod(f.path, 0o600)
        let chmodded = try HostCapture.manifestDigest(of: dir.path)
        #expect(chmodded != first)
        try Data("a=2\n".utf8).write(to: f)
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_000, tv_nsec: 0)]
        utimensat(AT_FDCWD, f.path, &times, 0)
        #expect(try HostCapture.manifestDigest(of: dir.path) != chmodded)
    }

    @Test func aCaptureNameIsAPathComponent() {
        #expect(HostCapture.validName("host"))
        #expect(HostCapture.validName("web-01.prod"))
        #expect(!HostCapture.validName("../etc"))
        #expect(!HostCapture.validName(".hidden"))
        #expect(!HostCapture.validName(""))
    }

    @Test func aCommandThatIsNotAptIsRefusedNamingWhatIs() throws {
        let e = #expect(throws: RehearsalError.self) { try AptCommand(["dnf", "upgrade"]) }
        #expect(e?.exitStatus == 2)
        #expect(e?.description.contains("apt-get or apt with install") == true, "\(e?.description ?? "")")
        #expect(throws: RehearsalError.self) { try AptCommand(["apt-get", "update"]) }
        #expect(try AptCommand(["/usr/bin/apt", "install", "-y", "nginx"]).action == "install")
    }

    @Test func theGuestRunsTheCommandAsGivenNeverDownloading() throws {
        let c = try AptCommand(["apt-get", "install", "-y", "it's"])
        #expect(c.guestCommand == "'env' 'DEBIAN_FRONTEND=noninteractive' 'apt-get' 'install' '-y' 'it'\\''s' '-y' '-o' 'APT::Get::Download=false' '-o' 'Dpkg::Options::=--force-confdef' '-o' 'Dpkg::Options::=--force-confold'")
        #expect(c.downloadArgv == ["apt-get", "install", "-y", "it's", "--download-only", "--yes", "--quiet"])
    }

    @Test func optionValuesAreNotTakenForTheAction() throws {
        #expect(try AptCommand(["apt-get", "-o", "Debug::X=1", "-t", "bookworm-backports", "install", "-y", "nginx"]).action == "install")
        #expect(throws: RehearsalError.self) { try AptCommand(["apt-get", "-o", "install", "update"]) }
        #expect(try AptCommand(["apt", "upgrade"]).downloadArgv.contains("--with-new-pkgs"))
        #expect(!(try AptCommand(["apt-get", "upgrade"]).downloadArgv.contains("--with-new-pkgs")))
    }

    /// An absolute link in the copy points at the host's own file: writing must never follow it.
    @Test func adaptingTheCopyNeverWritesThroughALink() throws {
        let fm = FileManager.default
        let base = fm.temporaryDirectory.appendingPathComponent("mirror-\(UUID().uuidString.prefix(8))")
        defer { try? fm.removeItem(at: base) }
        let tree = base.appendingPathComponent("tree"), host = base.appendingPathComponent("host")
        try fm.createDirectory(at: tree.appendingPathComponent("etc"), withIntermediateDirectories: true)
        try fm.createDirectory(at: host, withIntermediateDirectories: true)
        try Data("host's fstab\n".utf8).write(to: host.appendingPathComponent("fstab"))
        try fm.createSymbolicLink(atPath: tree.appendingPathComponent("etc/fstab").path, withDestinationPath: host.appendingPathComponent("fstab").path)
        try fm.createSymbolicLink(atPath: tree.appendingPathComponent("etc/systemd").path, withDestinationPath: host.path)
        try MirrorPath.write("copy's fstab\n", to: "etc/fstab", in: tree)
        #expect(try String(contentsOf: host.appendingPathComponent("fstab"), encoding: .utf8) == "host's fstab\n")
        #expect(try String(contentsOf: tree.appendingPathComponent("etc/fstab"), encoding: .utf8) == "copy's fstab\n")
        #expect(throws: RehearsalError.self) { try MirrorPath.write("x", to: "etc/systemd/system/x.service", in: tree) }
        #expect(throws: RehearsalError.self) { try MirrorPath.symlink("etc/systemd/x", to: "/dev/null", in: tree) }
        #expect(!fm.fileExists(atPath: host.appendingPathComponent("system").path))
        try MirrorPath.symlink("etc/new/dir/unit", to: "/dev/null", in: tree)
        #expect(try fm.destinationOfSymbolicLink(atPath: tree.appendingPathComponent("etc/new/dir/unit").path) == "/dev/null")
    }
}
