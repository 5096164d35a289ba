import CLibvirt

/// An error reported by libvirt, with the operation that failed.
///
/// libvirt keeps its last error per thread, so `LibvirtError.last(_:)` must be
/// called on the failing thread right after the failing call, with no `await`
/// in between. Every wrapper in this module does that.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// What we were doing, e.g. "virDomainCreateXML".
    public let operation: String
    /// libvirt's `virErrorNumber`, or -1 if libvirt gave none.
    public let code: Int32
    /// libvirt's `virErrorDomain` (which subsystem raised it).
    public let domain: Int32
    public let message: String

    public init(operation: String, code: Int32 = -1, domain: Int32 = 0, message: String) {
        self.operation = operation
        self.code = code
        self.domain = domain
        self.message = message
    }

    /// The calling thread's last libvirt error, attributed to `operation`.
    public static func last(_ operation: String) -> LibvirtError {
        guard let err = virGetLastError() else {
            return LibvirtError(operation: operation, message: "unknown libvirt error")
        }
        let message = err.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        return LibvirtError(operation: operation, code: err.pointee.code, domain: err.pointee.domain, message: message)
    }

    /// `VIR_ERR_NO_DOMAIN_METADATA`: the domain has no metadata under that namespace.
    public var isNoMetadata: Bool { code == Int32(VIR_ERR_NO_DOMAIN_METADATA.rawValue) }
    /// `VIR_ERR_NO_DOMAIN`: the domain is gone.
    public var isNoDomain: Bool { code == Int32(VIR_ERR_NO_DOMAIN.rawValue) }
    /// `VIR_ERR_OPERATION_INVALID`: e.g. destroying a domain that is not running.
    public var isOperationInvalid: Bool { code == Int32(VIR_ERR_OPERATION_INVALID.rawValue) }

    public var description: String { "\(operation): \(message)" }
}

/// libvirt's default error handler prints every error to stderr; we report
/// errors ourselves, so replace it with one that does nothing.
func silenceDefaultErrorHandler() {
    virSetErrorFunc(nil) { _, _ in }
}
