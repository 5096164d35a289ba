import Foundation

/// The bootable disk made from a captured copy, and the generation record
/// that goes with it.
///
/// It is laid out as the debian recipe lays out its disks, without loop
/// devices or root-only mounts: one ext4 partition made from the tree by
/// `mkfs.ext4 -d`, GRUB for BIOS in the MBR gap, and the tree's own newest
/// kernel in its `grub.cfg`, so that a kernel an upgrade installs (and
/// `update-grub` adds) is the kernel that boots next. A tree without BIOS
/// GRUB boots its kernel directly; a tree without a kernel boots the one
/// `--kernel` names.
struct HostDisk {
    let name: String
    let root: String
    let mirror: URL
    let manifestDigest: String
    let kernelFrom: Generation?

    /// Kept in the digest: a change to how copies are adapted or laid out is a new generation.
    static let layoutVersion = "host-disk 1"
    static let label = "rehearse-root"
    static let filesystemUUID = "5e4a1c2e-0d1b-4c6e-9a57-686f73740001"
    static let cmdline = "console=ttyS0,115200 panic=-1 quiet loglevel=4 tsc=reliable no_timer_check mitigations=off"

    enum Boot: Equatable {
        /// BIOS → GRUB from the disk → the tree's kernel `release`.
        case grub(release: String)
        /// libvirt hands the tree's kernel and initrd to the VM.
        case ownKernel(release: String)
        /// libvirt hands another generation's kernel and initrd to the VM.
        case foreign(Generation)
    }

    struct Identity {
        var boot: Boot
        var digest: String
        var version: String
    }

    private var fm: FileManager { FileManager.default }
    private func path(_ rel: String) -> String { mirror.appendingPathComponent(rel).path }

    /// The tree's kernels, newest first, by the versions in their file names.
    func kernelReleases() -> [String] {
        let names = (try? fm.contentsOfDirectory(atPath: path("boot"))) ?? []
        return names.filter { $0.hasPrefix("vmlinuz-") }.map { String($0.dropFirst("vmlinuz-".count)) }
            .filter { fm.fileExists(atPath: path("boot/initrd.img-\($0)")) }
            .sorted { DebianVersion($0) > DebianVersion($1) }
    }

    /// How it boots and its digest, decided before anything is built.
    func identity() throws -> Identity {
        guard HostAdaptation.usesSystemd(mirror) else {
            throw RehearsalError(.badHost, "\(root): its /sbin/init is not systemd; a capture boots systemd systems only")
        }
        let boot: Boot
        if let k = kernelFrom {
            guard k.kernel != nil else { throw RehearsalError(.badHost, "--kernel \(k.name): that generation boots by firmware and has no kernel to lend") }
            boot = .foreign(k)
        } else if let rel = kernelReleases().first {
            boot = fm.fileExists(atPath: path("usr/lib/grub/i386-pc/boot.img")) ? .grub(release: rel) : .ownKernel(release: rel)
        } else {
            throw RehearsalError(.badHost, "\(root) has no kernel in /boot (vmlinuz-* with its initrd.img-*): give --kernel GENERATION (for example debian) to boot the copy with that one")
        }
        var files = [(role: "tree", digest: manifestDigest), (role: "layout", digest: SHA256.hex(Data(Self.layoutVersion.utf8)))]
        var version = "captured from \(root)"
        switch boot {
        case let .grub(rel): version += ", kernel \(rel) by GRUB"
        case let .ownKernel(rel): version += ", kernel \(rel)"
        case let .foreign(g):
            version += ", kernel \(g.kernelRelease ?? "?") of \(g.name)"
            files.append((role: "kernel", digest: g.digest))
        }
        let digest = GenerationStore.digest(name: name, version: "", boot: boot.mode, cmdline: nil, parent: nil, files: files)
        return Identity(boot: boot, digest: digest, version: version)
    }

    /// Adapts the copy, builds the disk into `home/<digest>` and seals it.
    func build(identity: Identity, into home: URL, step: (String) -> Void) throws -> Generation {
        let out = home.appendingPathComponent(String(identity.digest.prefix(12)))
        let work = home.appendingPathComponent(".build-\(getpid())")
        try? fm.removeItem(at: work)
        try fm.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: work) }

        step("adapt the copy for the VM")
        var adapt = HostAdaptation(tree: mirror, foreignKernel: { if case .foreign = identity.boot { return true } else { return false } }())
        try adapt.apply()
        var notes = adapt.notes
        var kernel: String?, initrd: String?, cmdline: String?
        let release: String?
        switch identity.boot {
        case let .grub(rel):
            release = rel
            notes.append(try initrdForVirtio(release: rel, step: step))
            try grub(release: rel, core: work.appendingPathComponent("core.img"))
            notes.append("/boot/grub/grub.cfg: boots kernel \(rel) with the serial console; /etc/default/grub.d/rehearse.cfg keeps that for update-grub")
        case let .ownKernel(rel):
            release = rel
            notes.append(try initrdForVirtio(release: rel, step: step))
            try fm.copyItem(atPath: path("boot/vmlinuz-\(rel)"), toPath: work.appendingPathComponent("vmlinuz").path)
            try fm.copyItem(atPath: path("boot/initrd.img-\(rel)"), toPath: work.appendingPathComponent("initrd").path)
            kernel = "vmlinuz"; initrd = "initrd"
            cmdline = "root=LABEL=\(Self.label) rw \(Self.cmdline)"
            notes.append("booted directly with its kernel \(rel): it has no BIOS GRUB (grub-pc-bin), so a kernel an upgrade installs does not boot next")
        case let .foreign(g):
            release = g.kernelRelease
            kernel = g.kernel; initrd = g.initrd
            cmdline = "root=LABEL=\(Self.label) rw \(Self.cmdline)"
            notes.append("booted directly with the kernel of \(g.name) (\(g.kernelRelease ?? "?")): the host has none of its own in /boot")
        }

        step("make the ext4 filesystem and the partitioned disk")
        let raw = work.appendingPathComponent("disk.raw")
        try makeDisk(raw, core: identity.boot.mode == .firmware ? work.appendingPathComponent("core.img") : nil)
        step("convert the disk to qcow2")
        let staged = work.appendingPathComponent("out")
        try fm.createDirectory(at: staged, withIntermediateDirectories: true)
        try run(["qemu-img", "convert", "-O", "qcow2", raw.path, staged.appendingPathComponent("disk.qcow2").path], timeout: 3600)
        try? fm.removeItem(at: raw)
        // The copy's own kernel and initrd move in beside the disk; a lent kernel stays where its generation has it.
        for rel in [kernel, initrd].compactMap({ $0 }) where !rel.hasPrefix("/") {
            try fm.moveItem(at: work.appendingPathComponent(rel), to: staged.appendingPathComponent(rel))
        }

        func final(_ rel: String?) -> String? { rel.map { $0.hasPrefix("/") ? $0 : out.appendingPathComponent($0).path } }
        let disk = staged.appendingPathComponent("disk.qcow2")
        let size = (try? fm.attributesOfItem(atPath: disk.path)[.size] as? Int64) ?? 0
        var g = Generation(name: name, version: identity.version, boot: identity.boot.mode, kernel: final(kernel), initrd: final(initrd),
                           cmdline: cmdline, kernelRelease: release, disk: out.appendingPathComponent("disk.qcow2").path,
                           description: "a capture of \(root == "/" ? "this host" : root)", digest: identity.digest,
                           recipe: "host", recipeDigest: manifestDigest, directory: out.path, builtAt: Date(), size: size)
        g.adaptations = notes
        g.expectedFailures = adapt.expectedFailures.isEmpty ? nil : adapt.expectedFailures
        let sealed = GenerationStore.Sealed(recipe: "host", generations: [g], payloads: [:])
        try GenerationStore.encoder.encode(sealed).write(to: staged.appendingPathComponent(GenerationStore.sealFile))
        for f in (try? fm.contentsOfDirectory(atPath: staged.path)) ?? [] { chmod(staged.appendingPathComponent(f).path, 0o400) }
        chmod(staged.path, 0o700)
        try? fm.removeItem(at: out)
        try fm.moveItem(at: staged, to: out)
        return g
    }

    /// The initrd must find a virtio disk: a host's initrd made with
    /// `MODULES=dep` has only the drivers of the host's own disks.
    private func initrdForVirtio(release rel: String, step: (String) -> Void) throws -> String {
        let modules = ["virtio_pci", "virtio_blk", "ext4"]
        let listed = (try? HostCommand.run(["chroot", mirror.path, "lsinitramfs", "/boot/initrd.img-\(rel)"], timeout: 300)) ?? ""
        if listed.contains("virtio_blk") || !fm.fileExists(atPath: path("usr/sbin/update-initramfs")) {
            return "its initrd for \(rel) is the host's own (it has the virtio drivers)"
        }
        step("rebuild the copy's initrd for \(rel) with virtio drivers")
        let list = path("etc/initramfs-tools/modules")
        let old = (try? String(contentsOfFile: list, encoding: .utf8)) ?? ""
        try MirrorPath.write(old + (old.hasSuffix("\n") || old.isEmpty ? "" : "\n") + "# Rehearsal: the VM's disk\n" + modules.joined(separator: "\n") + "\n",
                             to: "etc/initramfs-tools/modules", in: mirror)
        // MODULES=dep would probe the sysfs a bare chroot lacks (and the host's disks, not the VM's).
        try MirrorPath.write("# Rehearsal: the VM's drivers, not the host's\nMODULES=most\n", to: "etc/initramfs-tools/conf.d/rehearse-vm.conf", in: mirror)
        try run(["chroot", mirror.path, "update-initramfs", "-u", "-k", rel], timeout: 900)
        return "its initrd for \(rel) rebuilt with MODULES=most and \(modules.joined(separator: ", ")) (etc/initramfs-tools/conf.d/rehearse-vm.conf, /etc/initramfs-tools/modules)"
    }

    /// GRUB for BIOS, installed the way grub-install would but without a
    /// loop device: core.img (its blocklist points at sector 2) goes in the
    /// MBR gap, the modules and grub.cfg in /boot/grub.
    private func grub(release rel: String, core: URL) throws {
        try run(["chroot", mirror.path, "grub-mkimage", "-O", "i386-pc", "-o", "/tmp/rehearse-core.img", "-p", "(hd0,msdos1)/boot/grub",
                 "biosdisk", "part_msdos", "ext2", "normal", "linux", "serial", "terminal", "search", "search_label", "echo", "test", "gzio"], timeout: 300)
        try? fm.removeItem(at: core)
        try fm.moveItem(atPath: path("tmp/rehearse-core.img"), toPath: core.path)
        let mods = try MirrorPath.directory("boot/grub/i386-pc", in: mirror)
        for f in (try? fm.contentsOfDirectory(atPath: path("usr/lib/grub/i386-pc"))) ?? [] where f.hasSuffix(".mod") || f.hasSuffix(".lst") {
            let dest = "\(mods)/\(f)"
            try? fm.removeItem(atPath: dest)
            try fm.copyItem(atPath: path("usr/lib/grub/i386-pc/\(f)"), toPath: dest)
        }
        let cfg = """
        # Written by Rehearsal for the captured copy; update-grub replaces it.
        serial --unit=0 --speed=115200
        terminal_input serial
        terminal_output serial
        set timeout=0
        menuentry 'captured system, kernel \(rel)' {
          insmod part_msdos
          insmod ext2
          search --no-floppy --label --set=root \(Self.label)
          linux /boot/vmlinuz-\(rel) root=LABEL=\(Self.label) ro \(Self.cmdline)
          initrd /boot/initrd.img-\(rel)
        }

        """
        try MirrorPath.write(cfg, to: "boot/grub/grub.cfg", in: mirror)
        let defaults = """
        # Added by Rehearsal to the captured copy: the VM's console is serial.
        GRUB_TIMEOUT=0
        GRUB_TERMINAL=serial
        GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
        GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX \(Self.cmdline)"
        GRUB_DISABLE_OS_PROBER=true

        """
        try MirrorPath.write(defaults, to: "etc/default/grub.d/rehearse.cfg", in: mirror)
    }

    /// One partition from sector 2048 holding an ext4 made from the tree,
    /// sized for what it holds and room for an upgrade. The filesystem's
    /// UUID, hash seed and times are fixed.
    private func makeDisk(_ disk: URL, core: URL?) throws {
        let part = disk.deletingLastPathComponent().appendingPathComponent("part.raw")
        let usage = try run(["du", "-sx", "--block-size=1M", mirror.path], timeout: 3600)
        let usedMiB = Int(usage.split(separator: "\t").first.map(String.init) ?? "") ?? 1024
        let files = try run(["sh", "-c", "find \"$1\" -xdev | wc -l", "sh", mirror.path], timeout: 3600)
        let inodes = (Int(files.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 100_000) * 3 / 2 + 65536
        // Half again what it holds, and 2 GiB for what an upgrade downloads and unpacks.
        let partMiB = ((usedMiB * 3 / 2 + 2048) + 255) / 256 * 256
        var env = ProcessInfo.processInfo.environment
        env["E2FSPROGS_FAKE_TIME"] = "1700000000"
        try? fm.removeItem(at: part)
        try run(["mkfs.ext4", "-q", "-L", Self.label, "-U", Self.filesystemUUID, "-E", "hash_seed=\(Self.filesystemUUID)",
                 "-N", String(inodes), "-d", mirror.path, part.path, "\(partMiB)M"], environment: env, timeout: 3600)
        defer { try? fm.removeItem(at: part) }
        try? fm.removeItem(at: disk)
        try run(["truncate", "-s", "\(partMiB + 1)M", disk.path])
        try run(["sh", "-c", "echo 'start=2048, type=83, bootable' | sfdisk -q \"$1\"", "sh", disk.path])
        try run(["dd", "if=\(part.path)", "of=\(disk.path)", "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none"], timeout: 3600)
        if let core {
            try run(["dd", "if=\(path("usr/lib/grub/i386-pc/boot.img"))", "of=\(disk.path)", "bs=440", "count=1", "conv=notrunc", "status=none"])
            try run(["dd", "if=\(core.path)", "of=\(disk.path)", "bs=512", "seek=1", "conv=notrunc", "status=none"])
        }
    }

    @discardableResult
    private func run(_ argv: [String], environment: [String: String]? = nil, timeout: Double = 600) throws -> String {
        do { return try HostCommand.run(argv, environment: environment, timeout: timeout) }
        catch { throw RehearsalError.infrastructure("making the disk of capture `\(name)` failed: \(error)") }
    }
}

extension HostDisk.Boot {
    var mode: Generation.BootMode {
        if case .grub = self { return .firmware }
        return .direct
    }
}
