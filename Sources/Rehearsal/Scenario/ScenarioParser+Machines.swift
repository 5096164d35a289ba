import Foundation
import Yams

/// Several machines: `machines:`, `networks:`, a step's `on:` and the link steps.
///
///     machines:
///       server: {generation: debian}
///       client: {generation: debian}
///     steps:
///       - wait_for_open_port: 8080
///         on: server
///       - succeed: curl -fsS http://server:8080/
///         on: client
///       - link_down: server
///
/// Everything is checked here, before anything boots: a step's machine, a
/// step without `on:` among several machines, names given twice, a network
/// nobody joins.
extension ScenarioParser {
    static let networksKey = "networks"

    /// `machine:` (one machine, called `machine`) or `machines:` (named ones), and `networks:`.
    static func parseMachines(_ top: Node.Mapping, _ node: Node, _ r: Reader) throws -> ([MachineRole], [NetworkSpec]) {
        var declared: [NetworkSpec] = []
        if let n = top[networksKey] {
            guard let seq = n.sequence, !seq.isEmpty else { throw r.error(n, "`networks` is a list of network names") }
            for item in seq {
                let name = try r.string(item, "networks")
                try checkName(name, item, what: "network", r)
                if declared.contains(where: { $0.name == name }) { throw r.error(item, "network `\(name)` is declared twice") }
                declared.append(NetworkSpec(name: name, line: item.mark?.line ?? 0))
            }
        }
        if let one = top["machine"] {
            if let k = top.keys.first(where: { $0.string == "machines" }) {
                throw r.error(k, "the scenario has both `machine:` and `machines:`; keep one (`machines:` names several)")
            }
            var role = MachineRole(name: "machine", line: one.mark?.line ?? 0,
                                   spec: try parseMachine(one, r, allowed: machineKeys.union([networksKey])))
            role.networks = try networkNames(one, r)
            try checkNetworks([role], declared, r)
            return ([role], declared)
        }
        guard let many = top["machines"] else { throw r.error(node, "missing `machine:` (or `machines:` for several)") }
        guard let map = many.mapping, !map.isEmpty else {
            throw r.error(many, "`machines` is a mapping of machine names to machines, such as `server: {generation: debian}`")
        }
        var roles: [MachineRole] = []
        for (key, value) in map {
            let name = try r.string(key, "machines")
            try checkName(name, key, what: "machine", r)
            if roles.contains(where: { $0.name == name }) { throw r.error(key, "machine `\(name)` is declared twice") }
            var role = MachineRole(name: name, line: key.mark?.line ?? 0,
                                   spec: try parseMachine(value, r, allowed: machineKeys.union([networksKey]), context: "machines.\(name)"))
            role.networks = try networkNames(value, r)
            roles.append(role)
        }
        // Several machines share one network unless the scenario says otherwise.
        let networks = declared.isEmpty && roles.count > 1 ? [NetworkSpec(name: NetworkSpec.defaultName, line: many.mark?.line ?? 0)] : declared
        try checkNetworks(roles, networks, r)
        return (roles, networks)
    }

    /// A machine's `networks: [NAME, …]`.
    private static func networkNames(_ machine: Node, _ r: Reader) throws -> [String] {
        guard let n = machine.mapping?[networksKey] else { return [] }
        guard let seq = n.sequence, !seq.isEmpty else { throw r.error(n, "a machine's `networks` is a list of network names") }
        return try seq.map { try r.string($0, "networks") }
    }

    /// Every network a machine names is declared, and every declared one has a machine.
    private static func checkNetworks(_ roles: [MachineRole], _ networks: [NetworkSpec], _ r: Reader) throws {
        for role in roles {
            for name in role.networks where !networks.contains(where: { $0.name == name }) {
                throw RehearsalError.badScenario(file: r.file, line: role.line,
                                                 "machine `\(role.name)` joins network `\(name)`, which is not declared"
                                                 + (networks.isEmpty ? " (declare it under `networks:`)" : " (networks: \(networks.map(\.name).joined(separator: ", ")))"))
            }
        }
        for (i, network) in networks.enumerated() {
            let joined = roles.contains { $0.networks.contains(network.name) || ($0.networks.isEmpty && i == 0) }
            if !joined { throw RehearsalError.badScenario(file: r.file, line: network.line, "no machine joins network `\(network.name)`") }
        }
    }

    /// Machine and network names become host names in the guests.
    private static func checkName(_ name: String, _ n: Node, what: String, _ r: Reader) throws {
        guard name.range(of: #"^[a-z][a-z0-9-]{0,30}$"#, options: .regularExpression) != nil else {
            throw r.error(n, "a \(what) name is a host name: lower-case letters, digits and `-`, starting with a letter (not \(name.debugDescription))")
        }
    }

    /// `link_down: MACHINE` or `link_down: {machine: M, network: N}`.
    static func parseLink(_ n: Node, kind: String, _ r: Reader) throws -> (machine: String, network: String?) {
        if let m = n.mapping {
            try r.checkKeys(m, allowed: ["machine", "network"], in: kind)
            guard let machine = m["machine"] else { throw r.error(n, "`\(kind)` needs `machine:`") }
            return (try r.string(machine, "machine"), try m["network"].map { try r.string($0, "network") })
        }
        let machine = try r.string(n, kind)
        guard !machine.isEmpty else { throw r.error(n, "`\(kind)` names a machine: `\(kind): MACHINE`") }
        return (machine, nil)
    }

    /// Every step runs on a machine that exists; among several, every step says which.
    static func checkMachines(of steps: [Step], machines: [MachineRole], networks: [NetworkSpec], _ r: Reader) throws {
        let names = machines.map(\.name)
        for step in steps {
            func refuse(_ message: String) -> RehearsalError { RehearsalError.badScenario(file: r.file, line: step.line, message) }
            guard let on = step.machine else {
                if machines.count > 1 {
                    throw refuse("step `\(step.name)` does not say which machine it runs on: add `on:` (one of \(names.joined(separator: ", ")))")
                }
                if case .link = step.action { throw refuse("`\(step.kind)` names a machine") }
                continue
            }
            guard let role = machines.first(where: { $0.name == on }) else {
                throw refuse("step `\(step.name)` runs on machine `\(on)`, which the scenario does not declare (machines: \(names.joined(separator: ", ")))")
            }
            if case .link(_, let network) = step.action {
                let joined = role.networks.isEmpty ? networks.prefix(1).map(\.name) : role.networks
                if joined.isEmpty { throw refuse("machine `\(on)` is on no network, so `\(step.kind)` has no link to change") }
                if let network, !joined.contains(network) {
                    throw refuse("machine `\(on)` is not on network `\(network)` (it is on \(joined.joined(separator: ", ")))")
                }
                if network == nil, joined.count > 1 {
                    throw refuse("machine `\(on)` is on several networks (\(joined.joined(separator: ", "))): write `\(step.kind): {machine: \(on), network: NAME}`")
                }
            }
        }
    }
}
