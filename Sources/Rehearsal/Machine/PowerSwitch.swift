import Foundation
import Libvirt
import Synchronization

/// A machine's current power-on: its libvirt domain and what listens to it.
/// The one owner of those handles; `cut()` is their one close.
///
/// Synchronous on purpose: the emergency hook (a second ^C) and a machine's
/// deinit must be able to cut the power without awaiting anything.
final class PowerSwitch: Sendable {
    struct PowerOn: Sendable {
        let domain: Domain
        let serial: ConsoleStream
        let channel: ConsoleStream
        let watch: LifecycleWatch
    }

    private let current = Mutex<PowerOn?>(nil)

    func set(_ p: PowerOn) { current.withLock { $0 = p } }

    var domain: Domain? { current.withLock { $0?.domain } }
    var channel: ConsoleStream? { current.withLock { $0?.channel } }
    var serial: ConsoleStream? { current.withLock { $0?.serial } }
    var isOn: Bool { current.withLock { $0 != nil } }

    /// Cuts the power of the current boot (blocking: libvirt waits for QEMU
    /// to exit). libvirt can fail a destroy while QEMU is busy; a machine
    /// that is still running after three tries is left for `rehearse clean`.
    func cut() {
        guard let p = current.withLock({ p -> PowerOn? in let taken = p; p = nil; return taken }) else { return }
        p.watch.cancel()
        p.channel.close()
        p.serial.close()
        for _ in 0..<3 {
            // A save already stopped it: nothing to destroy (and no 200 ms waits for a destroy that fails).
            if !p.domain.isActive { break }
            if (try? p.domain.destroy()) != nil, !p.domain.isActive { break }
            usleep(200_000)
        }
    }
}
