import Foundation
import Synchronization

/// A named machine of a scenario (`machines:` in YAML; the single `machine:`
/// is one called `machine`).
public struct MachineRole: Sendable {
    public var name: String
    /// The line of its name, for errors about it.
    public var line: Int
    public var spec: MachineSpec
    /// The networks it joins, by name; empty: none (a single machine), or the
    /// scenario's first network (several machines; see `Scenario.networkPlan`).
    public var networks: [String] = []

    public init(name: String, line: Int, spec: MachineSpec, networks: [String] = []) {
        self.name = name
        self.line = line
        self.spec = spec
        self.networks = networks
    }
}

/// A private network of a scenario (`networks:`; `default` when none is declared).
public struct NetworkSpec: Sendable, Equatable {
    public var name: String
    public var line: Int
    public init(name: String, line: Int) {
        self.name = name
        self.line = line
    }
    public static let defaultName = "default"
}

/// One machine's card on one private network: what the domain gets
/// (`DomainXML`) and how the guest configures it (`MachineNetwork.setUpCommand`).
///
/// A network is a UDP multicast group on the host's loopback (libvirt's
/// `mcast` interface, QEMU's `-netdev socket,mcast=`): the guests of a
/// network hear each other with no bridge, no daemon and no privilege, and
/// nothing else is on it. The host has no address there and the guests
/// have no route out, so they reach neither the host nor beyond it.
public struct NetworkInterface: Sendable, Equatable {
    public var network: String
    public var mac: String
    /// The guest's address and prefix length (`10.0.N.M/24`).
    public var address: String
    public var prefix: Int
    /// The multicast group and port that carry the network.
    public var group: String
    public var port: Int
}

/// Everything one machine needs for its networks.
public struct MachineNetwork: Sendable, Equatable {
    public var interfaces: [NetworkInterface]
    /// `/etc/hosts` lines for the other machines (and this one).
    public var hosts: [String]

    /// A shell command (POSIX sh, busybox or iproute2 `ip`) that brings each
    /// card up with its address, found by its MAC whatever the guest named it,
    /// and writes the names into `/etc/hosts`. Run after every boot.
    public var setUpCommand: String {
        var lines = ["set -e", "ip link set lo up"]
        for i in interfaces {
            lines.append("""
            n=; for d in /sys/class/net/*; do [ "$(cat "$d/address")" = \(i.mac) ] && n=${d##*/}; done
            [ -n "$n" ] || { echo "no network card with MAC \(i.mac) (network \(i.network))" >&2; exit 1; }
            ip addr flush dev "$n"; ip addr add \(i.address)/\(i.prefix) dev "$n"; ip link set "$n" up
            """)
        }
        let marker = "# rehearse: private network"
        lines.append("grep -v '\(marker)$' /etc/hosts > /etc/hosts.rehearse 2>/dev/null || true")
        lines.append("cat >> /etc/hosts.rehearse <<'EOF'\n" + hosts.map { "\($0) \(marker)" }.joined(separator: "\n") + "\nEOF")
        lines.append("cat /etc/hosts.rehearse > /etc/hosts; rm -f /etc/hosts.rehearse")
        return lines.joined(separator: "\n")
    }
}

/// Addresses and names of every machine of a scenario on its networks.
///
/// Predictable: network number `n` (1-based, in declaration order) is
/// `10.0.n.0/24`, and machine number `m` (1-based, in declaration order) is
/// `10.0.n.m` on every network it joins, with MAC `52:54:00:00:n:m`. Each
/// machine's name resolves to its address on the first network the asker
/// shares with it, and `NAME.NETWORK` to its address on that network.
public struct NetworkPlan: Sendable {
    public private(set) var machines: [String: MachineNetwork] = [:]

    /// Plans `roles` on `networks`; every network gets a fresh multicast
    /// group and port, so that two runs at once never hear each other.
    public init(roles: [MachineRole], networks: [NetworkSpec]) {
        let carriers = networks.map { _ in MulticastGroups.shared.allocate() }
        func joined(_ role: MachineRole) -> [Int] {
            let names = role.networks.isEmpty ? networks.prefix(1).map(\.name) : role.networks
            return names.compactMap { n in networks.firstIndex { $0.name == n } }
        }
        func address(network k: Int, machine m: Int) -> String { "10.0.\(k + 1).\(m + 1)" }
        for (m, role) in roles.enumerated() {
            let mine = joined(role)
            guard !mine.isEmpty else { continue }
            let interfaces = mine.map { k in
                NetworkInterface(network: networks[k].name, mac: String(format: "52:54:00:00:%02x:%02x", k + 1, m + 1),
                                 address: address(network: k, machine: m), prefix: 24,
                                 group: carriers[k].group, port: carriers[k].port)
            }
            var hosts: [String] = []
            for (o, other) in roles.enumerated() {
                let theirs = joined(other)
                let shared = mine.filter(theirs.contains)
                guard let first = shared.first else { continue }
                hosts.append("\(address(network: first, machine: o)) \(other.name)")
                for k in shared { hosts.append("\(address(network: k, machine: o)) \(other.name).\(networks[k].name)") }
            }
            machines[role.name] = MachineNetwork(interfaces: interfaces, hosts: hosts)
        }
    }
}

/// Multicast groups handed out to networks: administratively scoped
/// (239.255.0.0/16), chosen at random with a random port, and never twice
/// in one process, so that networks of runs at once (here or in another
/// `rehearse`) are apart.
final class MulticastGroups: Sendable {
    static let shared = MulticastGroups()
    private let used = Mutex<Set<String>>([])

    func allocate() -> (group: String, port: Int) {
        while true {
            let group = "239.255.\(UInt8.random(in: 1...254)).\(UInt8.random(in: 1...254))"
            let port = Int.random(in: 20_000...60_000)
            if used.withLock({ $0.insert("\(group):\(port)").inserted }) { return (group, port) }
        }
    }
}
