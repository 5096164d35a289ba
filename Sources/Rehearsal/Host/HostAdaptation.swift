import Foundation

/// What a captured copy needs changed to run as a VM, applied to the copy
/// only (the host is never written) and each listed in the generation's
/// record, so a user sees exactly how the rehearsal differs from the host.
///
/// The mirror is refreshed from the host before every capture, which puts
/// back (or removes) whatever an earlier adaptation changed.
struct HostAdaptation {
    let tree: URL
    /// The kernel the VM boots is not the tree's own (`--kernel`): its modules are missing.
    var foreignKernel = false

    /// What was changed, one line each.
    private(set) var notes: [String] = []
    /// Units that cannot work in a VM and that the boot check therefore allows to fail.
    private(set) var expectedFailures: [String] = []

    /// Units that configure or wait for a network: the guest has none.
    static let networkUnits = ["networking.service", "NetworkManager.service", "NetworkManager-wait-online.service",
                               "systemd-networkd.service", "systemd-networkd.socket", "systemd-networkd-wait-online.service",
                               "wpa_supplicant.service", "dhcpcd.service", "connman.service", "ModemManager.service",
                               "ifupdown-wait-online.service"]
    /// Units that look after hardware a VM does not have.
    static let hardwareUnits = ["smartmontools.service", "smartd.service", "lm-sensors.service", "fancontrol.service",
                                "bluetooth.service", "thermald.service", "nvidia-persistenced.service", "mdmonitor.service",
                                "multipathd.service", "iscsid.service", "open-iscsi.service", "rngd.service", "tlp.service",
                                "irqbalance.service", "fwupd.service", "fwupd-refresh.service", "power-profiles-daemon.service"]

    init(tree: URL, foreignKernel: Bool) {
        self.tree = tree
        self.foreignKernel = foreignKernel
    }

    private func path(_ rel: String) -> String { tree.appendingPathComponent(rel).path }
    private var fm: FileManager { FileManager.default }

    /// Whether the tree boots with systemd (the only init a capture supports).
    static func usesSystemd(_ tree: URL) -> Bool {
        let fm = FileManager.default
        let init_ = tree.appendingPathComponent("sbin/init").path
        guard let dest = try? fm.destinationOfSymbolicLink(atPath: init_) else {
            return fm.fileExists(atPath: tree.appendingPathComponent("lib/systemd/systemd").path) && !fm.fileExists(atPath: init_)
        }
        return dest.hasSuffix("systemd/systemd")
    }

    /// A unit file the tree has (shipped by a package or set up locally).
    func hasUnit(_ unit: String) -> Bool {
        ["etc/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"].contains { dir in
            let p = path("\(dir)/\(unit)")
            return fm.fileExists(atPath: p) || (try? fm.destinationOfSymbolicLink(atPath: p)) != nil
        }
    }

    /// Whether some target wants `unit` (it is enabled).
    func isEnabled(_ unit: String) -> Bool {
        let dirs = (try? fm.contentsOfDirectory(atPath: path("etc/systemd/system"))) ?? []
        return dirs.filter { $0.hasSuffix(".wants") }.contains { fm.fileExists(atPath: path("etc/systemd/system/\($0)/\(unit)")) || (try? fm.destinationOfSymbolicLink(atPath: path("etc/systemd/system/\($0)/\(unit)"))) != nil }
    }

    mutating func apply() throws {
        try fstab()
        try shell()
        try network()
        hardware()
        if foreignKernel {
            expectedFailures.append("systemd-modules-load.service")
            notes.append("its kernel is not the host's and has no modules in the copy: systemd-modules-load.service may fail")
        }
    }

    /// One ext4 disk holds everything that was copied (a separate /boot or /var included).
    private mutating func fstab() throws {
        let p = path("etc/fstab")
        let old = (try? String(contentsOfFile: p, encoding: .utf8)) ?? ""
        let entries = old.split(separator: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        var text = "# Rehearsal: the VM's one disk holds everything the capture copied.\nLABEL=rehearse-root / ext4 defaults 0 1\n"
        if !entries.isEmpty { text += "# The host's entries, not used in the VM:\n" + entries.map { "# \($0)\n" }.joined() }
        try replace(p, with: text)
        notes.append("/etc/fstab: the VM's disk as / (the host's \(entries.count) \(entries.count == 1 ? "entry" : "entries") kept as comments)")
    }

    /// A root shell on ttyS1, where the harness talks to the guest. It does
    /// not wait for udev's device unit, which a host without udev never has.
    private mutating func shell() throws {
        let unit = """
        # Added by Rehearsal to the captured copy only: the harness's root shell.
        [Unit]
        Description=Rehearsal's root shell on ttyS1
        After=systemd-user-sessions.service

        [Service]
        ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud -L 115200,38400,9600 ttyS1 vt220
        Type=idle
        Restart=always
        UtmpIdentifier=ttyS1
        TTYPath=/dev/ttyS1
        TTYReset=yes
        TTYVHangup=yes

        [Install]
        WantedBy=multi-user.target

        """
        try replace(path("etc/systemd/system/rehearse-shell.service"), with: unit)
        try link(path("etc/systemd/system/multi-user.target.wants/rehearse-shell.service"), to: "/etc/systemd/system/rehearse-shell.service")
        // A getty of the host's own on the same port would fight over it.
        try link(path("etc/systemd/system/serial-getty@ttyS1.service"), to: "/dev/null")
        notes.append("a root shell on ttyS1 for the harness (rehearse-shell.service; serial-getty@ttyS1 masked)")
    }

    private mutating func network() throws {
        let present = Self.networkUnits.filter(hasUnit)
        for u in present { try link(path("etc/systemd/system/\(u)"), to: "/dev/null") }
        notes.append("networking left unconfigured (the guest has no network)" + (present.isEmpty ? "" : ": masked \(present.joined(separator: ", "))"))
    }

    private mutating func hardware() {
        let enabled = Self.hardwareUnits.filter { hasUnit($0) && isEnabled($0) }
        guard !enabled.isEmpty else { return }
        expectedFailures += enabled
        notes.append("allowed to fail, as they look after hardware a VM lacks: \(enabled.joined(separator: ", "))")
    }

    private func replace(_ p: String, with text: String) throws {
        try MirrorPath.write(text, to: String(p.dropFirst(tree.path.count + 1)), in: tree)
    }

    private func link(_ p: String, to dest: String) throws {
        try MirrorPath.symlink(String(p.dropFirst(tree.path.count + 1)), to: dest, in: tree)
    }
}
