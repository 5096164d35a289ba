import CLibvirt
import Foundation

/// A libvirt domain reference (`virDomainPtr`), freed exactly once in deinit.
///
/// `@unchecked Sendable` for the same reason as `Connection`: libvirt's domain
/// calls are thread-safe, and the pointer never changes after init.
public final class Domain: @unchecked Sendable {
    let pointer: virDomainPtr
    /// Keeps the connection open for as long as the domain reference lives.
    public let connection: Connection

    init(pointer: virDomainPtr, connection: Connection) {
        self.pointer = pointer
        self.connection = connection
    }

    deinit { virDomainFree(pointer) }

    public var name: String {
        virDomainGetName(pointer).map { String(cString: $0) } ?? "?"
    }

    public var uuid: String {
        var buf = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        guard virDomainGetUUIDString(pointer, &buf) == 0 else { return "?" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Hard power-off. Destroying a domain that has already stopped is not an error.
    public func destroy() throws {
        if virDomainDestroy(pointer) != 0 {
            let e = LibvirtError.last("virDomainDestroy(\(name))")
            // Already stopped or gone (a transient domain vanishes when it stops).
            if e.isNoDomain || e.isOperationInvalid || virDomainIsActive(pointer) != 1 { return }
            throw e
        }
    }

    /// Whether the domain is running now (false once it stopped or vanished).
    public var isActive: Bool { virDomainIsActive(pointer) == 1 }

    /// The live domain XML.
    public func xmlDescription() throws -> String {
        guard let x = virDomainGetXMLDesc(pointer, 0) else { throw LibvirtError.last("virDomainGetXMLDesc") }
        defer { free(x) }
        return String(cString: x)
    }

    /// The `<metadata>` element stored under namespace `uri`, or nil when there is none.
    public func metadataElement(namespace uri: String) throws -> String? {
        let type = Int32(VIR_DOMAIN_METADATA_ELEMENT.rawValue)
        guard let x = virDomainGetMetadata(pointer, type, uri, 0) else {
            let e = LibvirtError.last("virDomainGetMetadata")
            if e.isNoMetadata { return nil }
            throw e
        }
        defer { free(x) }
        return String(cString: x)
    }

    /// Takes an external, disk-only snapshot described by `xml` (a
    /// `<domainsnapshot>` naming each disk's new overlay file): from now on
    /// the guest writes to the new files and the old ones stay as they were.
    /// No snapshot metadata is kept; the files are the whole snapshot.
    public func snapshotDisks(xml: String) throws {
        let flags = VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY.rawValue | VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA.rawValue
            | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC.rawValue
        guard let snapshot = virDomainSnapshotCreateXML(pointer, xml, flags) else {
            throw LibvirtError.last("virDomainSnapshotCreateXML(\(name))")
        }
        virDomainSnapshotFree(snapshot)
    }

    /// Changes a device of the running domain in place
    /// (`virDomainUpdateDeviceFlags`, live only): for an interface, `xml`
    /// names it by its MAC, and `<link state='down'/>` cuts its carrier.
    public func updateDevice(xml: String) throws {
        guard virDomainUpdateDeviceFlags(pointer, xml, VIR_DOMAIN_AFFECT_LIVE.rawValue) == 0 else {
            throw LibvirtError.last("virDomainUpdateDeviceFlags(\(name))")
        }
    }

    /// Saves the running guest's memory and device state to `file` and stops
    /// it (`virDomainSaveFlags`); a restore of the file resumes it running.
    public func save(to file: String) throws {
        guard virDomainSaveFlags(pointer, file, nil, VIR_DOMAIN_SAVE_RUNNING.rawValue) == 0 else {
            throw LibvirtError.last("virDomainSaveFlags(\(name))")
        }
    }
}
