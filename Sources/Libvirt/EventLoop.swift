import CLibvirt
import Foundation

/// libvirt's default event loop, run on one dedicated thread for the life of the process.
///
/// Console streams, domain events and keepalive all need it, and the embedded
/// QEMU driver needs it to talk to QEMU's monitor at all. libvirt requires it
/// to be registered before the first connection is opened, so `Connection`
/// starts it; there is one per process and it never stops.
public enum EventLoop {
    private static let started: Bool = {
        silenceDefaultErrorHandler()
        // Keep libvirt's own log lines (the embedded driver writes warnings to
        // stderr) out of the user's terminal unless they asked for them.
        if ProcessInfo.processInfo.environment["LIBVIRT_LOG_OUTPUTS"] == nil {
            setenv("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null", 1)
        }
        guard virInitialize() == 0, virEventRegisterDefaultImpl() == 0 else { return false }
        let thread = Thread {
            while true { _ = virEventRunDefaultImpl() }
        }
        thread.name = "libvirt-events"
        thread.stackSize = 1 << 20
        thread.start()
        return true
    }()

    /// Starts the loop once; later calls are free.
    public static func start() throws {
        guard started else { throw LibvirtError.last("virEventRegisterDefaultImpl") }
    }
}
