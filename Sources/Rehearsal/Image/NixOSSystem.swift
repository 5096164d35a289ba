import Foundation

/// A NixOS system closure, booted the way `nixos-rebuild build-vm` boots it.
///
/// Its toplevel (`/nix/store/HASH-nixos-system-NAME-VERSION`, or the `result`
/// link `nixos-rebuild build` leaves; `build-vm`'s `result` holds it as
/// `system`) has `kernel`, `initrd`, `kernel-params` and `init`. The machine
/// boots the kernel and initrd directly with
/// `<kernel-params> init=<toplevel>/init console=ttyS0,115200`, shares the
/// store read-only over 9p with mount tag `nix-store` (as build-vm does with
/// `-virtfs …,mount_tag=nix-store`), and gets a fresh ext4 root disk labelled
/// `nixos` (build-vm's empty `NIX_DISK_IMAGE`), removed with the machine.
///
/// The store is the directory that holds the toplevel: `/nix/store` on a
/// NixOS host. Links inside the closure name `/nix/store/…`, the path the
/// guest sees; they are followed inside that directory, so a store kept
/// elsewhere on the host (a test fixture) resolves the same way.
public struct NixOSSystem: Sendable, Equatable {
    /// The store on the host (shared with the guest as its `/nix/store`).
    public var store: String
    /// The toplevel's name in the store (`HASH-nixos-system-…`).
    public var toplevelName: String
    public var kernel: String
    public var initrd: String
    public var kernelParams: String
    /// `nixos-version`, when the toplevel has it.
    public var version: String?

    /// The 9p mount tag of the shared store, as in nixpkgs' qemu-vm.nix.
    public static let storeTag = "nix-store"
    /// The label of the fresh root filesystem, as in qemu-vm.nix.
    public static let rootLabel = "nixos"
    public static let rootDiskMiB = 1024
    static let guestStore = "/nix/store"

    /// The toplevel's name without its hash: `nixos-system-HOST-VERSION`.
    public var name: String { toplevelName.split(separator: "-", maxSplits: 1).last.map(String.init) ?? toplevelName }

    /// The toplevel as the guest sees it.
    public var guestToplevel: String { "\(Self.guestStore)/\(toplevelName)" }

    /// The kernel command line: the system's own parameters, its stage-2 init
    /// and the serial console the harness reads.
    public var cmdline: String {
        [kernelParams, "init=\(guestToplevel)/init", "console=ttyS0,115200"].filter { !$0.isEmpty }.joined(separator: " ")
    }

    static let entries = ["kernel", "initrd", "kernel-params", "init"]

    /// Whether `path` (a directory) holds a toplevel, itself or as `system/`.
    public static func looksLikeToplevel(_ path: String) -> Bool {
        let top = toplevel(of: path)
        return entries.allSatisfy { hasEntry(top.path, $0) }
    }

    /// The toplevel `path` names: itself (links resolved), or for a `build-vm`
    /// result, its `system` link followed inside the store that holds it.
    static func toplevel(of path: String) -> URL {
        let top = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        guard !hasEntry(top.path, "kernel-params"), hasEntry(top.path, "system"),
              let system = try? follow("\(top.path)/system", storeGuess: top.deletingLastPathComponent().path) else { return top }
        return URL(fileURLWithPath: system)
    }

    /// Reads the closure at `path` (a toplevel, a `result` link to one, or a
    /// `build-vm` result with `system/`). Throws naming what is missing.
    public init(path: String) throws {
        let top = Self.toplevel(of: path)
        let store = top.deletingLastPathComponent().path
        for entry in Self.entries where !Self.hasEntry(top.path, entry) {
            throw RehearsalError.scenario("\(path) is not a NixOS system: \(top.path) has no `\(entry)`")
        }
        guard URL(fileURLWithPath: store).lastPathComponent == "store" else {
            throw RehearsalError.scenario("\(path): the toplevel \(top.path) is not directly in a Nix store (…/nix/store)")
        }
        self.store = store
        self.toplevelName = top.lastPathComponent
        self.kernel = try Self.follow("\(top.path)/kernel", storeGuess: store)
        self.initrd = try Self.follow("\(top.path)/initrd", storeGuess: store)
        for (role, file) in [("kernel", kernel), ("initrd", initrd)] where !FileManager.default.isReadableFile(atPath: file) {
            throw RehearsalError.scenario("\(path): its \(role) \(file) is not a readable file")
        }
        let params = try Self.follow("\(top.path)/kernel-params", storeGuess: store)
        guard let text = try? String(contentsOfFile: params, encoding: .utf8) else {
            throw RehearsalError.scenario("\(path): cannot read its kernel-params")
        }
        self.kernelParams = text.trimmingCharacters(in: .whitespacesAndNewlines)
        self.version = (try? Self.follow("\(top.path)/nixos-version", storeGuess: store))
            .flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A generation for it. Its digest covers the toplevel's store path (which
    /// Nix derives from the whole closure), the command line and the bytes of
    /// kernel and initrd.
    public func generation() throws -> Generation {
        let kernelSum = try SHA256.file(kernel), initrdSum = try SHA256.file(initrd)
        let identity = "nixos system\ntoplevel \(guestToplevel)\ncmdline \(cmdline)\nkernel \(kernelSum)\ninitrd \(initrdSum)\n"
        let size = [kernel, initrd].compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int64 }.reduce(0, +)
        var g = Generation(name: name, version: version.map { "NixOS \($0)" } ?? "NixOS", boot: .direct,
                           kernel: kernel, initrd: initrd, cmdline: cmdline,
                           description: "the NixOS system \(guestToplevel)", digest: SHA256.hex(Data(identity.utf8)),
                           recipe: "-", recipeDigest: String(toplevelName.prefix(32)), directory: "\(store)/\(toplevelName)",
                           builtAt: (try? FileManager.default.attributesOfItem(atPath: kernel)[.modificationDate] as? Date) ?? Date(),
                           size: size)
        g.nixStore = store
        g.freshRootLabel = Self.rootLabel
        return g
    }

    /// Follows links from `path` until a non-link; a link into `/nix/store/…`
    /// is followed inside `storeGuess`.
    static func follow(_ path: String, storeGuess: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else { return current }
            if target.hasPrefix(guestStore + "/") {
                current = storeGuess + target.dropFirst(guestStore.count)
            } else if target.hasPrefix("/") {
                current = target
            } else {
                current = URL(fileURLWithPath: current).deletingLastPathComponent().appendingPathComponent(target).standardizedFileURL.path
            }
        }
        throw RehearsalError.scenario("\(path): too many levels of links")
    }

    private static func hasEntry(_ dir: String, _ name: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(dir)/\(name)") || isLink("\(dir)/\(name)")
    }

    private static func isLink(_ path: String) -> Bool {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil
    }
}
