import Foundation

/// A cloud-init NoCloud seed: `user-data`, `meta-data` (and `network-config`
/// when given) on an ISO 9660 volume labelled `cidata`, made the way
/// `cloud-localds` makes it (`genisoimage -volid cidata -joliet -rock`) and
/// attached as a read-only virtio disk with serial `cidata`. cloud-init's
/// `ds-identify` finds it by its label, so any image with cloud-init reads it.
///
/// The seed also carries `vendor-data`, the harness's own part: a stock cloud
/// image has no shell on the harness's channel (`ttyS1`), so unless a getty
/// is already enabled there, a `bootcmd` starts one that logs root in (the
/// transient unit `rehearse-channel.service`), the way the NixOS test
/// driver's backdoor service gives its driver a shell. cloud-init merges
/// vendor-data below the user-data, which stays byte for byte as given
/// (user-data can switch it off with `vendor_data: {enabled: false}`).
public struct CloudInitSeed: Sendable {
    /// The files named in a scenario (`machine.cloud_init`).
    public struct Files: Sendable, Equatable {
        public var userData: String
        /// Without it, the seed says only `instance-id: iid-rehearse-DIGEST`
        /// (cloud-init needs an instance id; the digest is the user-data's).
        public var metaData: String?
        public var networkConfig: String?
        public init(userData: String, metaData: String? = nil, networkConfig: String? = nil) {
            self.userData = userData
            self.metaData = metaData
            self.networkConfig = networkConfig
        }
    }

    static let serial = "cidata"
    /// The vendor-data: a root shell on ttyS1 for the harness, if none is set up.
    static let vendorData = """
        #cloud-config
        # Rehearsal: the harness's command channel (a root login on ttyS1), unless the image has one.
        bootcmd:
          - [sh, -c, "systemctl -q is-enabled serial-getty@ttyS1.service || systemd-run --no-block --unit=rehearse-channel --property=Restart=always /sbin/agetty --autologin root --noclear --keep-baud 115200,38400,9600 ttyS1 vt220"]

        """
    /// The ISO image in the run directory.
    public let image: URL

    /// Makes the seed from `files` in `directory`.
    public static func make(from files: Files, in directory: URL) throws -> CloudInitSeed {
        let fm = FileManager.default
        let stage = directory.appendingPathComponent("cidata")
        let image = directory.appendingPathComponent("cidata.iso")
        defer { try? fm.removeItem(at: stage) }
        do {
            try? fm.removeItem(at: stage)
            try fm.createDirectory(at: stage, withIntermediateDirectories: true)
            let user = try Data(contentsOf: URL(fileURLWithPath: files.userData))
            try user.write(to: stage.appendingPathComponent("user-data"))
            if let meta = files.metaData {
                try fm.copyItem(atPath: meta, toPath: stage.appendingPathComponent("meta-data").path)
            } else {
                try Data("instance-id: iid-rehearse-\(SHA256.hex(user).prefix(12))\n".utf8).write(to: stage.appendingPathComponent("meta-data"))
            }
            try Data(Self.vendorData.utf8).write(to: stage.appendingPathComponent("vendor-data"))
            if let network = files.networkConfig {
                try fm.copyItem(atPath: network, toPath: stage.appendingPathComponent("network-config").path)
            }
        } catch {
            throw RehearsalError.scenario("cannot read the cloud-init files: \(error.localizedDescription)")
        }
        do {
            try HostCommand.run(["genisoimage", "-quiet", "-output", image.path, "-volid", "cidata", "-joliet", "-rock", stage.path])
        } catch {
            try? fm.removeItem(at: image)
            throw RehearsalError.infrastructure("making the cloud-init seed failed: \(error)")
        }
        return CloudInitSeed(image: image)
    }

    func remove() { try? FileManager.default.removeItem(at: image) }
}
