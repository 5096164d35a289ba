import CLibvirt
import Foundation

/// What happened to a domain, from libvirt's lifecycle events.
public enum LifecycleEvent: Sendable, Equatable {
    case started
    /// The guest shut itself down (ACPI power-off, `poweroff`, or a reboot turned into a stop).
    case shutDown
    /// Someone destroyed it (us, or an administrator).
    case destroyed
    /// QEMU itself crashed or failed: an infrastructure failure, not the guest's.
    case hypervisorFailed
    /// The guest kernel crashed (pvpanic) or libvirt reported a crash stop.
    case guestCrashed
    /// The guest reset itself (a reboot; the domain keeps running with `on_reboot` restart).
    case rebooted
    case suspended
    case resumed
    case other(event: Int32, detail: Int32)

    init(event: Int32, detail: Int32) {
        switch UInt32(event) {
        case VIR_DOMAIN_EVENT_STARTED.rawValue: self = .started
        case VIR_DOMAIN_EVENT_SUSPENDED.rawValue: self = .suspended
        case VIR_DOMAIN_EVENT_RESUMED.rawValue: self = .resumed
        case VIR_DOMAIN_EVENT_CRASHED.rawValue: self = .guestCrashed
        // The guest shut itself down; STOPPED follows only once QEMU has exited.
        case VIR_DOMAIN_EVENT_SHUTDOWN.rawValue: self = .shutDown
        case VIR_DOMAIN_EVENT_STOPPED.rawValue:
            switch UInt32(detail) {
            case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN.rawValue: self = .shutDown
            case VIR_DOMAIN_EVENT_STOPPED_DESTROYED.rawValue: self = .destroyed
            case VIR_DOMAIN_EVENT_STOPPED_CRASHED.rawValue: self = .guestCrashed
            case VIR_DOMAIN_EVENT_STOPPED_FAILED.rawValue: self = .hypervisorFailed
            default: self = .other(event: event, detail: detail)
            }
        default: self = .other(event: event, detail: detail)
        }
    }

    /// True for every event after which the domain is no longer running.
    public var isStop: Bool {
        switch self {
        case .shutDown, .destroyed, .hypervisorFailed, .guestCrashed: return true
        default: return false
        }
    }
}

/// A registration for one domain's lifecycle and reboot events, removed
/// exactly once by `cancel()` or deinit.
///
/// `@unchecked Sendable`: the callback ids are written once in init and
/// cleared under `lock`; the handler runs on libvirt's event thread.
public final class LifecycleWatch: @unchecked Sendable {
    private let lock = NSLock()
    private let connection: Connection
    private var callbackIDs: [Int32] = []

    public init(domain: Domain, onEvent: @escaping @Sendable (LifecycleEvent) -> Void) throws {
        self.connection = domain.connection
        // libvirt takes every event callback through the generic type and calls
        // it with the signature of the event id (VIR_DOMAIN_EVENT_CALLBACK in C).
        let lifecycle: @convention(c) (virConnectPtr?, virDomainPtr?, Int32, Int32, UnsafeMutableRawPointer?) -> Void = { _, _, event, detail, opaque in
            guard let opaque else { return }
            Unmanaged<Box>.fromOpaque(opaque).takeUnretainedValue().handler(LifecycleEvent(event: event, detail: detail))
        }
        let reboot: @convention(c) (virConnectPtr?, virDomainPtr?, UnsafeMutableRawPointer?) -> Void = { _, _, opaque in
            guard let opaque else { return }
            Unmanaged<Box>.fromOpaque(opaque).takeUnretainedValue().handler(.rebooted)
        }
        do {
            try register(domain, VIR_DOMAIN_EVENT_ID_LIFECYCLE, unsafeBitCast(lifecycle, to: virConnectDomainEventGenericCallback.self), onEvent)
            try register(domain, VIR_DOMAIN_EVENT_ID_REBOOT, reboot, onEvent)
        } catch {
            cancel()
            throw error
        }
    }

    private func register(_ domain: Domain, _ event: virDomainEventID, _ callback: virConnectDomainEventGenericCallback,
                          _ handler: @escaping @Sendable (LifecycleEvent) -> Void) throws {
        let conn = try connection.raw("virConnectDomainEventRegisterAny")
        let box = Unmanaged.passRetained(Box(handler)).toOpaque()
        let id = virConnectDomainEventRegisterAny(conn, domain.pointer, Int32(event.rawValue), callback, box) { opaque in
            if let opaque { Unmanaged<Box>.fromOpaque(opaque).release() }
        }
        guard id >= 0 else {
            let e = LibvirtError.last("virConnectDomainEventRegisterAny")
            Unmanaged<Box>.fromOpaque(box).release()
            throw e
        }
        lock.withLock { callbackIDs.append(id) }
    }

    deinit { cancel() }

    public func cancel() {
        lock.lock(); let ids = callbackIDs; callbackIDs = []; lock.unlock()
        guard !ids.isEmpty, let conn = try? connection.raw("virConnectDomainEventDeregisterAny") else { return }
        for id in ids { virConnectDomainEventDeregisterAny(conn, id) }
    }

    private final class Box: @unchecked Sendable {
        let handler: @Sendable (LifecycleEvent) -> Void
        init(_ handler: @escaping @Sendable (LifecycleEvent) -> Void) { self.handler = handler }
    }
}
