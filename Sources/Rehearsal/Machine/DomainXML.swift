import Foundation

/// The libvirt domain XML for a machine.
///
/// Devices: the first serial port (`ttyS0`: kernel log and a root shell for
/// people) and a second one (`ttyS1`: the harness's command channel, kept
/// free of kernel messages). The channel is a UART rather than a virtio
/// console because QEMU silently drops virtio-console output whenever the
/// host side can't keep up (virtio-console.c, "silently dropping console
/// data on EAGAIN"); its UART waits instead, so large outputs arrive whole.
/// A power-off or crash destroys the domain, so the harness sees it as an
/// event; a reboot restarts it in place and libvirt reports it, so the
/// harness can tell a `reboot` step's reboot from one the guest did by itself.
/// The domain is tagged in `<metadata>` with its run and its `Owner`, so
/// that `rehearse clean` can find ours and leave everything else alone.
public struct DomainXML: Sendable {
    /// Our metadata namespace; a domain without it is not ours.
    public static let namespace = "https://rehearsal.dev/xmlns/machine/1"
    public static let serialDevice = "serial0"
    /// libvirt's alias for the second serial port.
    public static let channelDevice = "serial1"

    public var name: String
    public var accelerator: Accelerator
    public var memoryMiB: Int
    public var cpus: Int
    /// For direct boot: the kernel, its initrd and command line. Without a
    /// kernel the BIOS boots the first disk (firmware boot).
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    /// A qcow2 overlay to attach as the first virtio disk (`/dev/vda`).
    public var disk: String? = nil
    /// The first disk's serial (`/dev/disk/by-id/virtio-SERIAL`), if any.
    public var diskSerial: String? = nil
    /// Raw images attached read-only after it (`vdb`, `vdc`, …), each with a
    /// serial the guest finds it by: the payload, a cloud-init seed.
    public var readOnlyDisks: [ReadOnlyDisk] = []
    /// A host directory shared read-only over 9p (a Nix store).
    public var share: (source: String, tag: String)? = nil
    /// Cards on the scenario's private networks.
    public var interfaces: [NetworkInterface] = []
    /// The networks whose link is cut (`link_down`), by name.
    public var linksDown: Set<String> = []
    /// An Ignition config for the guest's fw_cfg (`opt/com.coreos/config`).
    public var ignition: String? = nil
    /// Identifies the run in the metadata (`rehearse clean` prints it).
    public var runID: String
    public var scenario: String
    /// The process that owns it, so that a sweep elsewhere leaves it alone while that process lives.
    public var owner: Owner = .current

    public func render() -> String {
        """
        <domain type='\(accelerator.domainType)'>
          <name>\(esc(name))</name>
          <metadata>
            \(Self.metadataElement(runID: runID, scenario: scenario, owner: owner))
          </metadata>
          <genid/>
          <memory unit='MiB'>\(memoryMiB)</memory>
          <vcpu>\(cpus)</vcpu>
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
        \(bootElements)  </os>
        \(ignition.map { "  <sysinfo type='fwcfg'><entry name='opt/com.coreos/config' file='\(esc($0))'/></sysinfo>\n" } ?? "")\
          <features><acpi/></features>
          <clock offset='utc'/>
          <on_poweroff>destroy</on_poweroff>
          <on_reboot>restart</on_reboot>
          <on_crash>destroy</on_crash>
          <devices>
            <serial type='pty'><target port='0'/></serial>
            <console type='pty'><target type='serial' port='0'/></console>
            <serial type='pty'><target port='1'/></serial>
            <controller type='usb' model='none'/>
            <memballoon model='none'/>
        \(disk.map { "    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='\(esc($0))'/><target dev='vda' bus='virtio'/>\(diskSerial.map { "<serial>\(esc($0))</serial>" } ?? "")</disk>\n" } ?? "")\
        \(readOnlyDisks.enumerated().map { i, d in "    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='\(esc(d.file))'/><target dev='\(Self.readOnlyTarget(i))' bus='virtio'/><readonly/><serial>\(esc(d.serial))</serial></disk>\n" }.joined())\
        \(interfaces.map { "    " + Self.interfaceElement($0, up: !linksDown.contains($0.network)) + "\n" }.joined())\
        \(share.map { "    <filesystem type='mount' accessmode='squash'><source dir='\(esc($0.source))'/><target dir='\(esc($0.tag))'/><readonly/></filesystem>\n" } ?? "")\
          </devices>
        </domain>
        """
    }

    /// The `<metadata>` element that marks a domain as ours (a restored clone gets its own).
    public static func metadataElement(runID: String, scenario: String, owner: Owner) -> String {
        "<rh:machine xmlns:rh='\(namespace)' run='\(XMLText.escape(runID))' \(owner.attributes) scenario='\(XMLText.escape(scenario))'/>"
    }

    /// An `<interface>` on a private network: a multicast socket bound to
    /// the loopback (`local`: QEMU's `localaddr`, which also keeps it off
    /// every other host interface). The same element, with its link state,
    /// changes it while the domain runs (`Domain.updateDevice`).
    public static func interfaceElement(_ i: NetworkInterface, up: Bool) -> String {
        "<interface type='mcast'><mac address='\(i.mac)'/><source address='\(i.group)' port='\(i.port)'><local address='127.0.0.1' port='0'/></source>"
            + "<model type='virtio'/><link state='\(up ? "up" : "down")'/></interface>"
    }

    private var bootElements: String {
        // Firmware boot: `useserial` (QEMU's `-machine graphics=off`) has
        // SeaBIOS write to ttyS0, where there is no screen to see it on, so
        // "No bootable device." reaches the console log and fails the run
        // at once; `rebootTimeout='-1'` keeps it from retrying, which would
        // look like a reboot the guest did by itself.
        guard let kernel else { return "    <boot dev='hd'/>\n    <bios useserial='yes' rebootTimeout='-1'/>\n" }
        return "    <kernel>\(esc(kernel))</kernel>\n"
            + (initrd.map { "    <initrd>\(esc($0))</initrd>\n" } ?? "")
            + (cmdline.map { "    <cmdline>\(esc($0))</cmdline>\n" } ?? "")
    }

    /// The target name of the `index`th read-only disk.
    public static func readOnlyTarget(_ index: Int) -> String {
        "vd" + String(UnicodeScalar(UInt8(ascii: "b") + UInt8(index)))
    }

    private func esc(_ s: String) -> String { XMLText.escape(s) }
}

/// A raw disk image attached read-only, found in the guest by its serial.
public struct ReadOnlyDisk: Sendable {
    public var file: String
    public var serial: String
    public init(file: String, serial: String) {
        self.file = file
        self.serial = serial
    }
}
