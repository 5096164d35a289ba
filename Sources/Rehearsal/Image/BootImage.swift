import Foundation

/// A built, bootable image: a kernel for direct boot, its initrd and command
/// line, and optionally a base disk. Its files are read-only; machines only
/// ever read them, and boot from a copy-on-write overlay of the disk.
public struct BootImage: Sendable, Codable {
    public var name: String
    /// Digest of the recipe and its inputs; names the cache entry.
    public var digest: String
    public var directory: String
    public var kernel: String
    public var initrd: String?
    public var cmdline: String
    public var kernelRelease: String?
    /// The base disk (qcow2), if the image has one.
    public var disk: String?

    /// Reads `image.json` in a built image directory.
    public static func load(directory: URL, digest: String) throws -> BootImage {
        let manifest = directory.appendingPathComponent("image.json")
        guard let data = try? Data(contentsOf: manifest),
              let m = try? JSONDecoder().decode(Manifest.self, from: data) else {
            throw ImageError.invalid(directory.path, "no readable image.json")
        }
        let kernel = directory.appendingPathComponent(m.kernel).path
        guard FileManager.default.fileExists(atPath: kernel) else { throw ImageError.invalid(directory.path, "kernel \(m.kernel) is missing") }
        let initrd = m.initrd.map { directory.appendingPathComponent($0).path }
        if let initrd, !FileManager.default.fileExists(atPath: initrd) { throw ImageError.invalid(directory.path, "initrd is missing") }
        let disk = m.disk.map { directory.appendingPathComponent($0).path }
        if let disk, !FileManager.default.fileExists(atPath: disk) { throw ImageError.invalid(directory.path, "disk is missing") }
        let cmdline = m.cmdline.flatMap { try? String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
        return BootImage(name: m.name, digest: digest, directory: directory.path, kernel: kernel, initrd: initrd,
                         cmdline: (cmdline ?? "console=ttyS0").trimmingCharacters(in: .whitespacesAndNewlines),
                         kernelRelease: m.kernelRelease, disk: disk)
    }

    /// The `image.json` a recipe writes.
    struct Manifest: Codable {
        var name: String
        var kernelRelease: String?
        var kernel: String
        var initrd: String?
        var cmdline: String?
        var disk: String?
    }
}

public enum ImageError: Error, CustomStringConvertible {
    case notFound(String, searched: [String])
    case invalid(String, String)
    case buildFailed(String, String)

    public var description: String {
        switch self {
        case let .notFound(name, searched):
            return "no image `\(name)`: no recipe in \(searched.joined(separator: ", "))"
        case let .invalid(path, why): return "image \(path) is not usable: \(why)"
        case let .buildFailed(name, why): return "building image `\(name)` failed: \(why)"
        }
    }
}
