import Rehearsal
import RehearsalProgram

/// The demo service's upgrade from 1.0 to 2.0, as `Scenarios/upgrade-app.yaml`
/// rehearses it, written in Swift: APT from a repository (the payload, a local
/// repository at /mnt/payload), then a reboot.
///
///     swift run upgrade-app-swift --junit junit.xml
@main
struct UpgradeApp: ScenarioProgram {
    static let name = "upgrade-app (Swift)"
    static let timeout = 600.0

    static func run(_ scenario: ScenarioContext) async throws {
        let host = try await scenario.machine(
            MachineDeclaration(.generation("debian"), memoryMiB: 512, payload: .recipe("debian", payload: "repo")))
        let greeting = "bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 && head -1 <&3'"

        try await host.waitForUnit("rehearse-demo")
        try await host.run(greeting, expect: .stdout(equals: "rehearse-demo 1.0: hello\n"), name: "demo 1.0 answers")
        try await host.succeed("""
            echo 'deb [trusted=yes] file:/mnt/payload ./' > /etc/apt/sources.list.d/payload.list
            apt-get update -q
            """, name: "add the payload as an APT source")
        try await host.succeed("DEBIAN_FRONTEND=noninteractive apt-get install -y -q rehearse-demo=2.0", name: "upgrade to 2.0", timeout: 180)
        try await host.reboot()

        // Plain Swift between steps: read a value, decide what to check next.
        let version = try await host.succeed("dpkg-query -W -f='${Version}' rehearse-demo", name: "2.0 is installed")
        guard version == "2.0" else { throw UpgradeFailed(installed: version) }
        try await host.waitForUnit("rehearse-demo")
        try await host.run(greeting, expect: .stdout(equals: "rehearse-demo 2.0: hello, world\n"), name: "demo 2.0 answers")
        try await host.waitForOpenPort(8081)
        try await host.run("systemctl --failed --no-legend --plain", expect: .stdout(equals: ""), name: "nothing failed")
    }

    struct UpgradeFailed: Error, CustomStringConvertible {
        let installed: String
        var description: String { "rehearse-demo \(installed) is installed, expected 2.0" }
    }
}
