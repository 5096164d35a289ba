import Foundation

/// Checks a disk image given as a file (`disk:`, `gate --candidate FILE`,
/// `compare FILE`) before anything boots: its real format must be the one
/// declared (qcow2 or raw), and its first sector must carry the 0x55AA boot
/// signature, or the BIOS has nothing to boot and the run would wait out
/// its whole deadline on a silent console.
///
/// The image is only ever read: `qemu-img info` and `qemu-img dd` open their
/// input read-only (and `-U` lets them read an image another QEMU holds).
public enum DiskImageCheck {
    /// What is wrong with an image, as one line naming the file.
    static func problem(_ path: String, _ reason: String) -> RehearsalError {
        RehearsalError(.badImage, reason, file: path)
    }
    /// Checks the image at `path` and returns its format: `declared`, or
    /// what `qemu-img` sees when nothing is declared. Throws a `.badImage` error naming the file.
    @discardableResult
    public static func check(_ path: String, declared: String?) throws -> String {
        let (format, virtualSize) = try info(path)
        if let declared, declared != format {
            throw problem(path, "not a \(declared) image (qemu-img sees \(format))")
        }
        guard format == "qcow2" || format == "raw" else {
            throw problem(path, "a disk image must be qcow2 or raw (qemu-img sees \(format))")
        }
        let sector = try firstSector(path, format: format, virtualSize: virtualSize)
        guard hasBootSignature(sector) else {
            throw problem(path, "no boot sector (no 0x55AA signature in its first sector): nothing for the firmware to boot")
        }
        return format
    }

    /// Whether a first sector ends in the BIOS boot signature.
    static func hasBootSignature(_ sector: Data) -> Bool {
        sector.count >= 512 && sector[sector.startIndex + 510] == 0x55 && sector[sector.startIndex + 511] == 0xAA
    }

    /// The format `qemu-img` probes (never trusting a name or a declaration)
    /// and the size the guest sees.
    static func info(_ path: String) throws -> (format: String, virtualSize: Int64?) {
        let out: String
        do {
            out = try HostCommand.run(["qemu-img", "info", "-U", "--output=json", path])
        } catch let e as HostCommand.Failure {
            throw problem(path, "not a disk image qemu-img can read: \(lastLine(e.output))")
        }
        // Warnings may share the output with the JSON; keep the object.
        guard let open = out.firstIndex(of: "{"), let close = out.lastIndex(of: "}"),
              let object = try? JSONSerialization.jsonObject(with: Data(out[open...close].utf8)) as? [String: Any],
              let format = object["format"] as? String else {
            throw problem(path, "qemu-img info gave no format: \(lastLine(out))")
        }
        return (format, (object["virtual-size"] as? NSNumber)?.int64Value)
    }

    /// The first 512 bytes the guest sees on the disk (fewer when it is smaller).
    static func firstSector(_ path: String, format: String, virtualSize: Int64?) throws -> Data {
        if format == "raw" {
            // A raw image is the guest's disk byte for byte.
            guard let h = FileHandle(forReadingAtPath: path) else { throw problem(path, "cannot be read") }
            defer { try? h.close() }
            return (try? h.read(upToCount: 512)) ?? Data()
        }
        if let virtualSize, virtualSize < 512 { return Data() }
        // qcow2: let qemu-img read the first guest sector (through any backing file) into a scratch file.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rehearse-sector-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        do {
            try HostCommand.run(["qemu-img", "dd", "-U", "-f", format, "-O", "raw", "bs=512", "count=1",
                                 "if=\(path)", "of=\(scratch.path)"])
        } catch let e as HostCommand.Failure {
            throw problem(path, "qemu-img cannot read its first sector: \(lastLine(e.output))")
        }
        return (try? Data(contentsOf: scratch)) ?? Data()
    }

    private static func lastLine(_ output: String) -> String {
        output.split(separator: "\n").last.map { String($0).trimmingCharacters(in: .whitespaces) } ?? "no output"
    }
}
