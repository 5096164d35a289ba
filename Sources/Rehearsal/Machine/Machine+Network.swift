import Foundation
import Libvirt

extension Machine {
    /// Cuts (`up: false`) or restores this machine's link to `network` (nil:
    /// its only one) while it runs, as a cable pulled and plugged in again:
    /// the card loses its carrier and QEMU drops its frames both ways. The
    /// state holds across reboots and power-ons until changed. Returns the card.
    @discardableResult
    public func setLink(up: Bool, network: String?) async throws -> NetworkInterface {
        let cards = spec.network?.interfaces ?? []
        let card: NetworkInterface
        if let network {
            guard let c = cards.first(where: { $0.network == network }) else {
                throw RehearsalError.scenario("this machine is not on network \(network)" + (cards.isEmpty ? "" : " (it is on \(cards.map(\.network).joined(separator: ", ")))"))
            }
            card = c
        } else {
            guard let c = cards.first else { throw RehearsalError.scenario("this machine is on no network") }
            guard cards.count == 1 else {
                throw RehearsalError.scenario("this machine is on several networks (\(cards.map(\.network).joined(separator: ", "))): say which")
            }
            card = c
        }
        guard let domain else { throw RehearsalError.scenario("the machine is not running") }
        let element = DomainXML.interfaceElement(card, up: up)
        do {
            try await offload { try domain.updateDevice(xml: element) }
        } catch let e as LibvirtError {
            throw RehearsalError.infrastructure("setting the link of \(card.network) \(up ? "up" : "down") failed: \(e.message)", underlying: e)
        }
        if up { linksDown.remove(card.network) } else { linksDown.insert(card.network) }
        return card
    }
}
