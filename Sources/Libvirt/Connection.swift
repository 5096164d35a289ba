import CLibvirt
import Foundation

/// An open libvirt connection (`virConnectPtr`), closed exactly once by `close()` or deinit.
///
/// `@unchecked Sendable` because libvirt's public API is thread-safe: a
/// connection and the objects obtained from it may be used from several
/// threads at once (libvirt docs, "Thread safety"). The only Swift state is
/// the pointer, cleared under `lock` when closed.
public final class Connection: @unchecked Sendable {
    private let lock = NSLock()
    private var pointer: virConnectPtr?
    /// The URI the connection was opened with.
    public let uri: String

    /// Opens `uri` (for example `qemu:///embed?root=/var/lib/x` or `test:///default`).
    public init(uri: String) throws {
        try EventLoop.start()
        guard let p = virConnectOpen(uri) else { throw LibvirtError.last("virConnectOpen(\(uri))") }
        self.pointer = p
        self.uri = uri
    }

    deinit { close() }

    /// Closes the connection. Domains obtained from it become unusable.
    public func close() {
        lock.lock(); let p = pointer; pointer = nil; lock.unlock()
        if let p { virConnectClose(p) }
    }

    func raw(_ operation: String) throws -> virConnectPtr {
        lock.lock(); defer { lock.unlock() }
        guard let p = pointer else { throw LibvirtError(operation: operation, message: "connection is closed") }
        return p
    }

    /// The hypervisor driver's name, e.g. "QEMU" or "TEST".
    public func driverType() throws -> String {
        let c = try raw("virConnectGetType")
        guard let t = virConnectGetType(c) else { throw LibvirtError.last("virConnectGetType") }
        return String(cString: t)
    }

    /// Starts a transient domain from XML; it vanishes from libvirt when it stops.
    public func createDomain(xml: String) throws -> Domain {
        let c = try raw("virDomainCreateXML")
        guard let d = virDomainCreateXML(c, xml, 0) else { throw LibvirtError.last("virDomainCreateXML") }
        return Domain(pointer: d, connection: self)
    }

    /// Starts the guest saved in `file` (by `Domain.save`) where it stopped,
    /// as the domain its header describes (see `SaveImage`), or as `xml`
    /// when given: the same domain (name, UUID, devices) with other files,
    /// say; returns it.
    public func restoreDomain(from file: String, name: String, xml: String? = nil) throws -> Domain {
        let c = try raw("virDomainRestoreFlags")
        guard virDomainRestoreFlags(c, file, xml, VIR_DOMAIN_SAVE_RUNNING.rawValue) == 0 else {
            throw LibvirtError.last("virDomainRestoreFlags(\(file))")
        }
        guard let d = try domain(named: name) else {
            throw LibvirtError(operation: "virDomainRestoreFlags(\(file))", message: "the restored domain \(name) is not there")
        }
        return d
    }

    /// libvirt's and the hypervisor's versions (`major * 1_000_000 + minor * 1000 + release`).
    public func versions() throws -> (library: UInt, hypervisor: UInt) {
        let c = try raw("virConnectGetVersion")
        var lib: UInt = 0, hv: UInt = 0
        guard virConnectGetLibVersion(c, &lib) == 0 else { throw LibvirtError.last("virConnectGetLibVersion") }
        guard virConnectGetVersion(c, &hv) == 0 else { throw LibvirtError.last("virConnectGetVersion") }
        return (lib, hv)
    }

    /// Every domain this connection knows about, running or defined.
    public func allDomains() throws -> [Domain] {
        let c = try raw("virConnectListAllDomains")
        var list: UnsafeMutablePointer<virDomainPtr?>?
        let n = virConnectListAllDomains(c, &list, 0)
        guard n >= 0, let list else { throw LibvirtError.last("virConnectListAllDomains") }
        defer { free(list) }
        return (0..<Int(n)).compactMap { list[$0].map { Domain(pointer: $0, connection: self) } }
    }

    /// Looks a domain up by name; nil when there is none.
    public func domain(named name: String) throws -> Domain? {
        let c = try raw("virDomainLookupByName")
        guard let d = virDomainLookupByName(c, name) else {
            let e = LibvirtError.last("virDomainLookupByName")
            if e.isNoDomain { return nil }
            throw e
        }
        return Domain(pointer: d, connection: self)
    }
}
