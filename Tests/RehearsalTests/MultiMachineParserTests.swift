import Foundation
import Testing
@testable import Rehearsal

/// `machines:`, `networks:`, `on:` and the link steps: what parses, and
/// every bad input refused before anything boots, at its file:line.
@Suite struct MultiMachineParserTests {
    func parse(_ yaml: String) throws -> Scenario { try ScenarioParser.parse(text: yaml, file: "t.yaml") }

    func error(_ yaml: String) -> String? {
        do { _ = try parse(yaml); return nil } catch let e as RehearsalError { return e.description } catch { return "\(error)" }
    }

    @Test func severalMachinesShareTheDefaultNetwork() throws {
        let s = try parse("""
        machines:
          server: {generation: tiny}
          client: {generation: tiny, memory: 128}
        steps:
          - succeed: "true"
            on: server
          - link_down: client
          - link_up: {machine: client}
        """)
        #expect(s.machines.map(\.name) == ["server", "client"])
        #expect(s.machines[1].spec.memoryMiB == 128)
        #expect(s.networks.map(\.name) == ["default"])
        #expect(s.steps.map(\.machine) == ["server", "client", "client"])
        #expect(s.steps.map(\.kind) == ["succeed", "link_down", "link_up"])
        let plan = s.networkPlan()
        #expect(plan.machines["server"]?.interfaces.map(\.address) == ["10.0.1.1"])
        #expect(plan.machines["client"]?.interfaces.map(\.mac) == ["52:54:00:00:01:02"])
        #expect(plan.machines["client"]?.hosts.contains("10.0.1.1 server") == true)
        // One network, one carrier: both cards hear the same group and port.
        #expect(plan.machines["server"]?.interfaces[0].group == plan.machines["client"]?.interfaces[0].group)
        #expect(plan.machines["server"]?.interfaces[0].port == plan.machines["client"]?.interfaces[0].port)
    }

    @Test func namedNetworksGiveEachMachineItsCards() throws {
        let s = try parse("""
        networks: [front, back]
        machines:
          web: {generation: tiny, networks: [front, back]}
          db: {generation: tiny, networks: [back]}
          user: {generation: tiny}
        steps:
          - link_down: {machine: web, network: back}
        """)
        let plan = s.networkPlan()
        #expect(plan.machines["web"]?.interfaces.map(\.address) == ["10.0.1.1", "10.0.2.1"])
        #expect(plan.machines["db"]?.interfaces.map(\.address) == ["10.0.2.2"])
        #expect(plan.machines["user"]?.interfaces.map(\.network) == ["front"])
        // db and user share no network: neither can name the other.
        #expect(plan.machines["db"]?.hosts.contains { $0.hasSuffix(" user") } == false)
        #expect(plan.machines["db"]?.hosts.contains("10.0.2.1 web") == true)
        #expect(plan.machines["web"]?.hosts.contains("10.0.2.2 db.back") == true)
        // Two runs of one scenario get networks apart.
        #expect(s.networkPlan().machines["web"]?.interfaces[0].port != plan.machines["web"]?.interfaces[0].port
                || s.networkPlan().machines["web"]?.interfaces[0].group != plan.machines["web"]?.interfaces[0].group)
    }

    @Test func aSingleMachineNeedsNoOnAndGetsNoNetwork() throws {
        let s = try parse("machine: {generation: tiny}\nsteps:\n  - succeed: x\n")
        #expect(s.networks.isEmpty && s.steps[0].machine == nil && s.machines.map(\.name) == ["machine"])
        #expect(s.networkPlan().machines.isEmpty)
    }

    @Test(arguments: [
        ("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps:\n  - succeed: x\n",
         "t.yaml:5: step `succeed: x` does not say which machine it runs on: add `on:` (one of a, b)"),
        ("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps:\n  - succeed: x\n    on: c\n",
         "t.yaml:5: step `succeed: x` runs on machine `c`, which the scenario does not declare (machines: a, b)"),
        ("machines:\n  a: {generation: tiny}\n  a: {generation: tiny}\nsteps: []\n",
         "t.yaml:3: machine `a` is declared twice"),
        ("networks: [x, y]\nmachines:\n  a: {generation: tiny}\n  b: {generation: tiny, networks: [x]}\nsteps: []\n",
         "t.yaml:1: no machine joins network `y`"),
        ("machines:\n  a: {generation: tiny, networks: [z]}\n  b: {generation: tiny}\nsteps: []\n",
         "t.yaml:2: machine `a` joins network `z`, which is not declared (networks: default)"),
        ("machine: {generation: tiny}\nmachines:\n  a: {generation: tiny}\nsteps: []\n",
         "t.yaml:2: the scenario has both `machine:` and `machines:`; keep one (`machines:` names several)"),
        ("machines:\n  Web_1: {generation: tiny}\nsteps: []\n",
         "t.yaml:2: a machine name is a host name: lower-case letters, digits and `-`, starting with a letter (not \"Web_1\")"),
        ("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps:\n  - link_down: c\n",
         "t.yaml:5: step `link_down` runs on machine `c`, which the scenario does not declare (machines: a, b)"),
        ("machine: {generation: tiny}\nsteps:\n  - link_down: machine\n",
         "t.yaml:3: machine `machine` is on no network, so `link_down` has no link to change"),
        ("networks: [x, y]\nmachines:\n  a: {generation: tiny, networks: [x, y]}\n  b: {generation: tiny}\nsteps:\n  - link_up: a\n",
         "t.yaml:6: machine `a` is on several networks (x, y): write `link_up: {machine: a, network: NAME}`"),
        ("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps:\n  - link_down: {machine: a, network: q}\n",
         "t.yaml:5: machine `a` is not on network `q` (it is on default)"),
        ("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps:\n  - link_down: a\n    on: b\n",
         "t.yaml:6: `link_down` names its machine itself: write `link_down: MACHINE` or `link_down: {machine: M, network: N}`"),
        ("machines: {}\nsteps: []\n",
         "t.yaml:1: `machines` is a mapping of machine names to machines, such as `server: {generation: debian}`"),
        ("steps: []\n", "t.yaml:1: missing `machine:` (or `machines:` for several)"),
    ])
    func badInputIsRefusedAtItsLine(yaml: String, message: String) {
        #expect(error(yaml) == message)
    }

    @Test func theSetUpCommandFindsCardsByMACAndNamesTheOthers() throws {
        let s = try parse("machines:\n  a: {generation: tiny}\n  b: {generation: tiny}\nsteps: []\n")
        let command = try #require(s.networkPlan().machines["a"]).setUpCommand
        #expect(command.contains("= 52:54:00:00:01:01 ]"))
        #expect(command.contains("ip addr add 10.0.1.1/24"))
        #expect(command.contains("10.0.1.2 b # rehearse: private network"))
    }

    @Test func aCardIsAMulticastSocketOnTheLoopback() {
        let card = NetworkInterface(network: "default", mac: "52:54:00:00:01:01", address: "10.0.1.1", prefix: 24, group: "239.255.1.2", port: 30000)
        var x = DomainXML(name: "d", accelerator: .tcg, memoryMiB: 64, cpus: 1, kernel: "k", initrd: nil, cmdline: nil, runID: "r", scenario: "s")
        x.interfaces = [card]
        x.linksDown = ["default"]
        let xml = x.render()
        #expect(xml.contains("<interface type='mcast'><mac address='52:54:00:00:01:01'/><source address='239.255.1.2' port='30000'><local address='127.0.0.1' port='0'/></source>"))
        #expect(xml.contains("<link state='down'/>"))
    }

    /// `gate --machine` and `compare --machine`: the machines a candidate replaces.
    @Test func aCandidateReplacesTheMachinesNamedOrEveryOne() throws {
        let s = try parse("""
        machines:
          server: {generation: tiny}
          db: {generation: tiny}
          client: {generation: tiny}
        steps:
          - succeed: "true"
            on: server
        """)
        #expect(try s.machinesNamed([]) == ["server", "db", "client"])
        // The scenario's order, whatever the order on the command line.
        #expect(try s.machinesNamed(["client", "server"]) == ["server", "client"])
        #expect(throws: RehearsalError.self) { try s.machinesNamed(["server", "web"]) }
        do {
            _ = try s.machinesNamed(["web"])
            Issue.record("an unknown machine was accepted")
        } catch let e as RehearsalError {
            #expect(e.code == .badScenario && e.description == "t.yaml: no machine `web` here (its machines: server, db, client)", "\(e)")
        }
        // One `machine:` is the host being upgraded, whatever the names.
        let one = try parse("machine: {generation: tiny}\nsteps:\n  - succeed: \"true\"\n")
        #expect(try one.machinesNamed(["server"]) == ["machine"])
    }

    @Test func aGatesCandidateStandsInOnlyForTheMachinesItNames() throws {
        let f = FileManager.default.temporaryDirectory.appendingPathComponent("gate-machines-\(UUID().uuidString.prefix(8)).yaml")
        try SharedScenarios.debianPair.write(to: f, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: f) }
        SharedScenarios.useRepositoryImages()
        let p = try Runner.prepare(files: [f.path], generation: "tiny", machines: ["client"])[0]
        #expect(p.scenario.machines.map(\.spec.image) == ["debian", "tiny"])
        #expect(p.subject == "client")
        let all = try Runner.prepare(files: [f.path], generation: "tiny")[0]
        #expect(all.scenario.machines.map(\.spec.image) == ["tiny", "tiny"])
        #expect(all.subject == "server")
    }

    /// Every machine of a scenario runs at once: the default `--jobs` counts them all.
    @Test func theDefaultJobsCountEveryMachineOfAScenario() throws {
        let one = Runner.Prepared(scenario: try parse("machine: {generation: tiny, memory: 512}\nsteps:\n  - succeed: \"true\"\n"), generations: [:])
        let two = Runner.Prepared(scenario: try parse("""
        machines:
          server: {generation: tiny, memory: 512}
          client: {generation: tiny, memory: 512}
        steps:
          - succeed: "true"
            on: server
        """), generations: [:])
        let perMachine = 512 + HostMemory.overheadMiB
        let memory = 3 * (256 + perMachine)  // three one-machine scenarios, but not two two-machine ones
        #expect(Runner.defaultJobs(for: [one], cores: 8, availableMiB: memory) == 3)
        #expect(Runner.defaultJobs(for: [one, two], cores: 8, availableMiB: memory) == 1)
        #expect(Runner.defaultJobs(for: [one, two], cores: 8, availableMiB: 2 * (256 + 2 * perMachine)) == 2)
        #expect(Runner.defaultJobs(for: [two], cores: 1, availableMiB: nil) == 1)
    }
}
