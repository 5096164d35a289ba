import CLibvirt
import Foundation

/// A domain's console or serial device opened as a non-blocking libvirt stream.
///
/// Bytes arrive on libvirt's event-loop thread and are handed to `onEvent` in
/// order; `.closed` comes exactly once, last. The stream is closed exactly
/// once, by `close()` or deinit, which removes the event callback first (as
/// libvirt requires) and then aborts the stream.
///
/// `@unchecked Sendable`: `virStreamPtr` may be used from several threads
/// (sending here, receiving on the event thread); the Swift state that changes
/// (`open`) is guarded by `lock`.
public final class ConsoleStream: @unchecked Sendable {
    public enum Event: Sendable {
        case data([UInt8])
        /// The stream ended: nil at end of stream (the guest's device went
        /// away, usually because QEMU exited), or the error that ended it.
        case closed(LibvirtError?)
    }

    private let lock = NSLock()
    private let stream: virStreamPtr
    private var open = true
    private var callbackRegistered = false
    public let device: String?

    /// Opens `device` (a libvirt alias such as "serial0" or "console1"; nil for
    /// the first console), taking it over from any other client (FORCE).
    public init(domain: Domain, device: String?, onEvent: @escaping @Sendable (Event) -> Void) throws {
        let conn = try domain.connection.raw("virStreamNew")
        guard let s = virStreamNew(conn, UInt32(VIR_STREAM_NONBLOCK.rawValue)) else {
            throw LibvirtError.last("virStreamNew")
        }
        self.stream = s
        self.device = device
        let flags = UInt32(VIR_DOMAIN_CONSOLE_FORCE.rawValue)
        guard virDomainOpenConsole(domain.pointer, device, s, flags) == 0 else {
            let e = LibvirtError.last("virDomainOpenConsole(\(device ?? "default"))")
            virStreamFree(s)
            throw e
        }
        let receiver = Receiver(owner: self, onEvent: onEvent)
        let opaque = Unmanaged.passRetained(receiver).toOpaque()
        let events = Int32(VIR_STREAM_EVENT_READABLE.rawValue | VIR_STREAM_EVENT_ERROR.rawValue | VIR_STREAM_EVENT_HANGUP.rawValue)
        let rc = virStreamEventAddCallback(s, events, { stream, _, opaque in
            guard let stream, let opaque else { return }
            Unmanaged<Receiver>.fromOpaque(opaque).takeUnretainedValue().drain(stream)
        }, opaque, { opaque in
            if let opaque { Unmanaged<Receiver>.fromOpaque(opaque).release() }
        })
        guard rc == 0 else {
            let e = LibvirtError.last("virStreamEventAddCallback")
            Unmanaged<Receiver>.fromOpaque(opaque).release()
            virStreamAbort(s)
            virStreamFree(s)
            throw e
        }
        callbackRegistered = true
    }

    deinit { close() }

    /// Writes as much of `bytes` as the stream takes now, without waiting:
    /// returns how many went out, or nil when the stream would block (the
    /// guest isn't reading). Callers decide how to wait (see `ShellSession`).
    public func trySend(_ bytes: ArraySlice<UInt8>) throws -> Int? {
        guard !bytes.isEmpty else { return 0 }
        lock.lock(); defer { lock.unlock() }
        guard open else { throw LibvirtError(operation: "virStreamSend", message: "console stream is closed") }
        let n = bytes.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                virStreamSend(stream, $0, buf.count)
            }
        }
        if n == -1 { throw LibvirtError.last("virStreamSend") }
        return n == -2 ? nil : Int(n)
    }

    /// Stops delivery and releases the stream. Safe to call more than once.
    public func close() {
        lock.lock()
        let wasOpen = open
        open = false
        let hadCallback = callbackRegistered
        callbackRegistered = false
        lock.unlock()
        if hadCallback { virStreamEventRemoveCallback(stream) }
        if wasOpen {
            virStreamAbort(stream)
            virStreamFree(stream)
        }
    }

    /// Called on the event thread when the stream ended by itself.
    fileprivate func endedByPeer() {
        lock.lock()
        let hadCallback = callbackRegistered
        callbackRegistered = false
        lock.unlock()
        if hadCallback { virStreamEventRemoveCallback(stream) }
    }
}

/// The event-thread side of a `ConsoleStream`: reads until the stream would
/// block, and delivers bytes and the single `.closed`.
private final class Receiver: @unchecked Sendable {
    // Touched only on libvirt's event thread, so it needs no lock.
    private var finished = false
    private weak var owner: ConsoleStream?
    private let onEvent: @Sendable (ConsoleStream.Event) -> Void
    private var buffer = [CChar](repeating: 0, count: 64 * 1024)

    init(owner: ConsoleStream, onEvent: @escaping @Sendable (ConsoleStream.Event) -> Void) {
        self.owner = owner
        self.onEvent = onEvent
    }

    func drain(_ stream: virStreamPtr) {
        while !finished {
            let n = virStreamRecv(stream, &buffer, buffer.count)
            if n > 0 {
                let bytes = buffer.withUnsafeBufferPointer { p in
                    p.baseAddress!.withMemoryRebound(to: UInt8.self, capacity: Int(n)) { Array(UnsafeBufferPointer(start: $0, count: Int(n))) }
                }
                onEvent(.data(bytes))
            } else if n == -2 {
                return
            } else {
                finished = true
                let error = n == 0 ? nil : LibvirtError.last("virStreamRecv")
                owner?.endedByPeer()
                onEvent(.closed(error))
            }
        }
    }
}
