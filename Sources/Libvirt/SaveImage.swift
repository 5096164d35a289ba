import Foundation

/// The file `Domain.save` writes (libvirt's QEMU save image): a header,
/// the domain XML and a migration cookie in a zero-padded area, then
/// QEMU's migration stream.
///
///     "LibvirtQemudSave"  version  data_len  was_running  compressed  cookieOffset  unused[14]   (uint32, little endian)
///     data_len bytes:     XML \0  cookie \0  zeros…
///     migration stream
///
/// A restore refuses XML whose name or UUID differ from the header's
/// ("Target domain name … does not match source"), so a clone with its own
/// name, UUID and disk files gets a copy of the file whose header carries its
/// XML; the stream is copied unchanged. (libvirt 9, `qemu_saveimage.h`.)
public struct SaveImage: Sendable {
    static let magic = Array("LibvirtQemudSave".utf8)
    static let headerSize = 16 + 4 * 19

    /// The domain XML in the header.
    public let xml: String
    let cookie: [UInt8]
    let dataLength: Int
    /// The file's size in bytes.
    public let size: Int64

    /// Reads the header of `file`; throws when it is not a complete save image.
    public init(file: String) throws {
        let bad = { (why: String) in LibvirtError(operation: "reading the save image \(file)", message: why) }
        guard let h = FileHandle(forReadingAtPath: file) else { throw bad("cannot open it") }
        defer { try? h.close() }
        let head = [UInt8](h.readData(ofLength: Self.headerSize))
        guard head.count == Self.headerSize, Array(head.prefix(16)) == Self.magic else { throw bad("not a libvirt QEMU save image (or a partial one)") }
        func field(_ i: Int) -> Int { head[16 + 4 * i ..< 20 + 4 * i].reversed().reduce(0) { $0 << 8 | Int($1) } }
        let (version, length, cookieOffset) = (field(0), field(1), field(4))
        guard version == 2, length > 0, length < 16 << 20, cookieOffset < length else { throw bad("unknown header (version \(version))") }
        let data = [UInt8](h.readData(ofLength: length))
        guard data.count == length else { throw bad("truncated header") }
        let xmlEnd = data.firstIndex(of: 0) ?? length
        xml = String(decoding: data[..<xmlEnd], as: UTF8.self)
        cookie = cookieOffset == 0 ? [] : Array(data[cookieOffset...].prefix { $0 != 0 })
        dataLength = length
        let end = try h.seekToEnd()
        size = Int64(end)
        guard end > UInt64(Self.headerSize + length) else { throw bad("no migration stream after the header") }
    }

    /// Writes a copy of `source` to `destination` whose header carries `xml`
    /// instead (same cookie, same stream).
    public func copy(from source: String, to destination: String, xml newXML: String) throws {
        let x = Array(newXML.utf8)
        var data = x + [0]
        let cookieOffset = cookie.isEmpty ? 0 : data.count
        if !cookie.isEmpty { data += cookie + [0] }
        guard data.count <= dataLength else {
            throw LibvirtError(operation: "copying the save image \(source)", message: "the new XML does not fit its header")
        }
        data += [UInt8](repeating: 0, count: dataLength - data.count)
        func le(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        guard let input = FileHandle(forReadingAtPath: source) else {
            throw LibvirtError(operation: "copying the save image \(source)", message: "cannot open it")
        }
        var header = [UInt8](input.readData(ofLength: Self.headerSize))
        try? input.close()
        guard header.count == Self.headerSize, Array(header.prefix(16)) == Self.magic else {
            throw LibvirtError(operation: "copying the save image \(source)", message: "it changed: no save image header any more")
        }
        header.replaceSubrange(32..<36, with: le(cookieOffset))  // cookieOffset, the fifth field
        do {
            // The kernel copies the stream (copy_file_range); then the header is written over.
            try? FileManager.default.removeItem(atPath: destination)
            try FileManager.default.copyItem(atPath: source, toPath: destination)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: destination)
            guard let output = FileHandle(forWritingAtPath: destination) else { throw CocoaError(.fileWriteNoPermission) }
            defer { try? output.close() }
            try output.write(contentsOf: Data(header + data))
        } catch {
            throw LibvirtError(operation: "copying the save image to \(destination)", message: "\(error)")
        }
    }
}
