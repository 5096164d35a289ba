import Foundation
import Testing
@testable import Rehearsal

/// Several real tiny guests on a private network, under TCG.
@Suite(.serialized) struct MultiMachineTests {
    /// The host's IPv4 addresses other than the loopback.
    static func hostAddresses() -> [String] {
        var out: [String] = []
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var p = list
        while let a = p {
            if let sa = a.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                var host = [CChar](repeating: 0, count: 64)
                getnameinfo(sa, socklen_t(MemoryLayout<sockaddr_in>.size), &host, 64, nil, 0, NI_NUMERICHOST)
                let s = String(cString: host)
                if !s.hasPrefix("127.") { out.append(s) }
            }
            p = a.pointee.ifa_next
        }
        return out
    }

    @Test func aServerAndAClientTalkByNameUntilTheLinkIsCutAndNeitherReachesTheHost() async throws {
        let hostChecks = Self.hostAddresses().map { a in
            "  - fail: timeout 3 wget -q -O - http://\(a):22/\n    name: the host's \(a) is out of reach\n    on: client\n"
        }.joined()
        let p = try TestGuest.scenario("""
        machines:
          server: {generation: tiny}
          client: {generation: tiny}
        timeout: 240
        steps:
          - succeed: mkdir -p /www && echo hello-from-server > /www/index.html && httpd -p 8080 -h /www
            on: server
          - wait_for_open_port: 8080
            on: server
          - run: wget -q -O - http://server:8080/
            on: client
            expect: {stdout_equals: "hello-from-server\\n"}
          - run: cat /etc/hosts; ip -4 addr show
            on: client
            expect: {stdout_contains: "10.0.1.1 server"}
          - link_down: client
          - wait_until_fails: timeout 3 wget -q -O - http://server:8080/
            on: client
            timeout: 30
          - link_up: client
          - wait_until_succeeds: timeout 3 wget -q -O - http://server:8080/
            on: client
            timeout: 30
        \(hostChecks)  - fail: ip route | grep -q default
            on: server
          - succeed: test -e /www/index.html
            name: the page is on the server, not here
            on: client
        """, name: "pair")
        let r = await TestGuest.runner.run(p)
        // Everything passed up to the step that ran on the wrong machine.
        #expect(r.outcome == .failed, "\(r.message ?? "")")
        let last = try #require(r.steps.last)
        #expect(last.machine == "client" && last.name == "client: the page is on the server, not here" && last.outcome == .failed)
        #expect(r.steps.dropLast().allSatisfy { $0.outcome == .passed }, "\(r.steps.map { ($0.name, $0.outcome, $0.message ?? "") })")
        #expect(r.steps.filter { $0.name.contains("out of reach") }.count == Self.hostAddresses().count)
        #expect(r.steps[3].stdout?.contains("10.0.1.2/24") == true)
        // Each machine keeps its own transcripts; JUnit says which machine ran a step.
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        for m in ["server", "client"] {
            for f in ["console.log", "channel.log", "domain.xml"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("\(m)/\(f)").path), "\(m)/\(f)")
            }
            #expect(TestGuest.qemuPIDs(domain: TestGuest.domainName(inRunDirectory: dir.appendingPathComponent(m)) ?? "?").isEmpty)
        }
        // Each boot says which machine it was.
        #expect(Set(r.boots.compactMap(\.machine)) == ["server", "client"] && r.boots.allSatisfy { $0.started != nil }, "\(r.boots)")
        let junit = ReportWriter.junit([r])
        #expect(junit.contains("name=\"client: link_down\"") && junit.contains("name=\"server: wait_for_open_port: 8080\""))
        let domain = try String(contentsOf: dir.appendingPathComponent("server/domain.xml"), encoding: .utf8)
        #expect(domain.contains("<interface type='mcast'>") && domain.contains("<local address='127.0.0.1'"))
    }

    /// Two scenarios at once, each with its own network on the same
    /// addresses: each client only ever hears its own server, and the third
    /// machine of one is not there for the other.
    @Test func twoScenariosAtOnceCannotSeeEachOthersNetworks() async throws {
        let bothServing = Rendezvous(count: 2), bothChecked = Rendezvous(count: 2)
        func scenario(_ id: String, extra: Bool) async -> ScenarioResult {
            await TestGuest.runner.run("isolation-\(id)") { s in
                var roles: KeyValuePairs<String, MachineDeclaration> = ["server": MachineDeclaration(.generation("tiny")),
                                                                        "client": MachineDeclaration(.generation("tiny"))]
                if extra {
                    roles = ["server": MachineDeclaration(.generation("tiny")), "client": MachineDeclaration(.generation("tiny")),
                             "third": MachineDeclaration(.generation("tiny"))]
                }
                let m = try await s.machines(roles)
                try await m["server"]!.succeed("mkdir -p /www && echo \(id) > /www/index.html && httpd -p 8080 -h /www")
                try await m["server"]!.waitForOpenPort(8080)
                await bothServing.arrive()
                for _ in 0..<5 {
                    try await m["client"]!.run("wget -q -O - http://10.0.1.1:8080/", expect: .stdout(equals: "\(id)\n"))
                }
                if extra {
                    try await m["client"]!.succeed("ping -c 1 -W 2 10.0.1.3")
                } else {
                    try await m["client"]!.fail("ping -c 2 -W 1 10.0.1.3")
                    // The API's link steps, as YAML's: cut, then restored.
                    try await m["client"]!.linkDown()
                    try await m["client"]!.waitUntilFails("timeout 3 wget -q -O - http://server:8080/", timeout: 30)
                    try await m["client"]!.linkUp()
                    try await m["client"]!.waitUntilSucceeds("timeout 3 wget -q -O - http://server:8080/", timeout: 30)
                }
                await bothChecked.arrive()
            }
        }
        async let a = scenario("a", extra: false)
        async let b = scenario("b", extra: true)
        let (ra, rb) = await (a, b)
        #expect(ra.outcome == .passed, "\(ra.message ?? "")")
        #expect(rb.outcome == .passed, "\(rb.message ?? "")")
    }
}

/// Lets `count` tasks wait until all of them have arrived.
actor Rendezvous {
    private let count: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var arrived = 0
    init(count: Int) { self.count = count }

    func arrive() async {
        arrived += 1
        if arrived >= count {
            waiting.forEach { $0.resume() }
            waiting = []
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
