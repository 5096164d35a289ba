import Foundation

/// How the guest CPU runs: KVM (hardware) or TCG (QEMU's emulator).
public enum Accelerator: String, Sendable, Codable, CaseIterable {
    case kvm, tcg

    /// libvirt's domain type for this accelerator.
    public var domainType: String { self == .kvm ? "kvm" : "qemu" }

    /// Picks KVM only where it can really boot a stock kernel.
    ///
    /// `/dev/kvm` alone is not enough: a paravirtual KVM (`kvm_pvm`, as on
    /// these CI machines) accepts guests and then hangs stock kernels at boot.
    /// So KVM is chosen only with the hardware modules (`kvm_intel`/`kvm_amd`)
    /// loaded and `/dev/kvm` usable; anything else gets TCG.
    public static func detect(sysModule: String = "/sys/module", kvmDevice: String = "/dev/kvm") -> (Accelerator, reason: String) {
        let fm = FileManager.default
        if fm.fileExists(atPath: "\(sysModule)/kvm_pvm") {
            return (.tcg, "paravirtual KVM (kvm_pvm) can't boot stock kernels")
        }
        guard fm.fileExists(atPath: kvmDevice) else { return (.tcg, "no \(kvmDevice)") }
        guard access(kvmDevice, R_OK | W_OK) == 0 else { return (.tcg, "\(kvmDevice) is not accessible") }
        for m in ["kvm_intel", "kvm_amd"] where fm.fileExists(atPath: "\(sysModule)/\(m)") {
            return (.kvm, "\(m) is loaded")
        }
        return (.tcg, "no hardware KVM module (kvm_intel/kvm_amd) is loaded")
    }
}
