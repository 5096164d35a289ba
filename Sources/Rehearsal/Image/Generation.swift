import Foundation

/// A generation: an immutable, bootable system identified by its digest.
///
/// It says how it boots (`direct`: kernel, initrd and command line handed to
/// libvirt; `firmware`: the VM's BIOS boots whatever the disk's bootloader
/// chooses), which base disk it has, and which generation it was derived
/// from. Recipes build generations (`Images/NAME/build.sh`); their files are
/// read-only, and machines boot from copy-on-write overlays of the disk.
public struct Generation: Sendable, Codable, Equatable {
    public enum BootMode: String, Sendable, Codable { case direct, firmware }

    public var name: String
    public var version: String
    public var boot: BootMode
    /// Absolute paths, for direct boot.
    public var kernel: String?
    public var initrd: String?
    public var cmdline: String?
    /// The kernel it boots (for firmware boot: the one installed when it was built).
    public var kernelRelease: String?
    /// The base disk, if it has one.
    public var disk: String?
    /// Its format: qcow2 (nil) or raw.
    public var diskFormat: String?
    /// The generation this one was derived from.
    public var parent: String?
    public var description: String?
    /// SHA-256 over its boot mode, command line, name, version, parent and
    /// the bytes of its kernel, initrd and disk.
    public var digest: String
    /// The recipe that built it and the digest of that build's inputs.
    public var recipe: String
    public var recipeDigest: String
    public var directory: String
    public var builtAt: Date
    /// Bytes of its files (a disk shared with another generation counts for both).
    public var size: Int64
    /// A Nix store on the host that the guest mounts read-only as its
    /// `/nix/store` (9p, tag `nix-store`); set for NixOS systems.
    public var nixStore: String? = nil
    /// When set, every machine gets a fresh, empty ext4 root disk with this
    /// label (what `nixos-rebuild build-vm` gives a NixOS system).
    public var freshRootLabel: String? = nil
    /// For a capture of a host: how the copy was changed to run as a VM, one line each.
    public var adaptations: [String]? = nil
    /// Units that cannot work in a VM (a captured host's hardware and
    /// network services): the boot check allows them to fail.
    public var expectedFailures: [String]? = nil

    public var shortDigest: String { String(digest.prefix(12)) }

    /// Any disk image with its own bootloader, booted by firmware: a
    /// generation of its own, identified by the SHA-256 of its bytes.
    /// The image must be of its declared format and have a boot sector (`DiskImageCheck`).
    public static func diskImage(_ path: String, format declared: String? = nil) throws -> Generation {
        let format = try DiskImageCheck.check(path, declared: declared)
        let sum = try SHA256.file(path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        let identity = "disk image\nformat \(format)\ndisk \(sum)\n"
        return Generation(name: URL(fileURLWithPath: path).lastPathComponent, version: "disk image (\(format))", boot: .firmware,
                          disk: path, diskFormat: format == "qcow2" ? nil : format, description: "the disk image \(path)",
                          digest: SHA256.hex(Data(identity.utf8)), recipe: "-", recipeDigest: sum, directory: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                          builtAt: (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date(), size: size)
    }

    /// The generation for a system given as files.
    public static func of(_ files: SystemFiles) throws -> Generation {
        switch files {
        case let .diskImage(path, format): return try diskImage(path, format: format)
        case let .nixosSystem(path): return try NixOSSystem(path: path).generation()
        }
    }
}

/// A recipe's output: its generations and its payload directories.
public struct BuiltRecipe: Sendable {
    public var recipe: String
    public var directory: URL
    public var generations: [Generation]
    /// Payload name → directory (for `machine.payload: image:RECIPE/NAME`).
    public var payloads: [String: URL]

    public func generation(named name: String) -> Generation? { generations.first { $0.name == name } }
}

/// `image.json`, written by a recipe's `build.sh build OUT`.
struct RecipeManifest: Codable {
    struct Entry: Codable {
        var name: String
        var version: String?
        var boot: Generation.BootMode?
        var kernel: String?
        var initrd: String?
        /// A file holding the command line.
        var cmdline: String?
        var kernelRelease: String?
        var disk: String?
        var parent: String?
        var description: String?
    }
    var generations: [Entry]
    var payloads: [String: String]?
}

extension RehearsalError {
    static func imageNotFound(_ name: String, searched: [String]) -> RehearsalError {
        RehearsalError(.unknownImage, "no image or generation `\(name)`: no recipe builds it in \(searched.joined(separator: ", "))")
    }
    /// A built image (our own output, or the cache) that can't be used: our side's failure.
    static func imageInvalid(_ path: String, _ why: String) -> RehearsalError {
        RehearsalError(.imageBuild, "image \(path) is not usable: \(why)")
    }
    static func imageBuildFailed(_ name: String, _ why: String, underlying: (any Error & Sendable)? = nil) -> RehearsalError {
        RehearsalError(.imageBuild, "building image `\(name)` failed: \(why)", underlying: underlying)
    }
}
