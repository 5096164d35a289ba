import Foundation
import Testing
@testable import Rehearsal

/// Candidates in the forms their distributions ship them: any disk image with
/// its own bootloader, an Ignition config handed over through fw_cfg, a
/// NixOS system closure with its store shared over 9p, and a cloud image
/// with cloud-init reading a NoCloud seed.
@Suite(.serialized) struct CandidateFormTests {
    @Test func anyDiskImageBootsByFirmwareAndSeesItsIgnitionConfig() async throws {
        // A disk with its own bootloader: the debian recipe's partitioned disk with GRUB.
        let disk = try await Self.baseDisk(of: "debian-firmware")
        let before = try TestGuest.fingerprint([disk])
        let dir = try Self.directory("ignition")
        let config = dir.appendingPathComponent("config.ign")
        try #"{"ignition": {"version": "3.4.0"}, "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-ed25519 AAAA rehearse-\#(UUID().uuidString)"]}]}}"#
            .write(to: config, atomically: true, encoding: .utf8)
        let sum = try SHA256.file(config.path)
        let p = try TestGuest.scenario("""
        machine: {disk: \(disk), format: qcow2, ignition: \(config.path), memory: 512}
        timeout: 300
        steps:
          - succeed: modprobe qemu_fw_cfg
          - name: the guest reads the config back from fw_cfg, byte for byte
            run: sha256sum < /sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw
            expect: {stdout_contains: \(sum)}
          - name: it booted from its own bootloader
            run: cat /proc/cmdline
            expect: {stdout_contains: "BOOT_IMAGE=/boot/vmlinuz"}
        """, name: "disk-image")
        #expect(p.machineGeneration == nil)
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.compactMap(\.message))")
        #expect(r.boots.first?.generation == "disk.qcow2")
        #expect(r.imageDigest?.count == 64)
        #expect(try TestGuest.fingerprint([disk]) == before, "the disk image is never written")
        let xml = try String(contentsOf: URL(fileURLWithPath: try #require(r.runDirectory)).appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("<entry name='opt/com.coreos/config' file='") && xml.contains("<boot dev='hd'/>"))
    }

    /// A NixOS-shaped closure built by `Tests/Fixtures/nixos-system.sh`
    /// (no Nix here): a store with busybox, a kernel, a stage-1 initrd and a
    /// toplevel, and a `result` link to it.
    /// With `loginPassword`, its ttyS1 has a getty asking for root's password instead of a shell.
    static func nixosFixture(version: String = "24.11.19700101.fixture", loginPassword: String? = nil) async throws -> URL {
        let out = TestGuest.runs.appendingPathComponent("nixos-\(UUID().uuidString.prefix(8))")
        var env = ProcessInfo.processInfo.environment
        env["LOGIN_PASSWORD"] = loginPassword
        try await TestGuest.host(["bash", TestGuest.repo.appendingPathComponent("Tests/Fixtures/nixos-system.sh").path, out.path, version], environment: env)
        return out
    }

    /// The base disk of a generation the debian recipe builds (built on first use).
    static func baseDisk(of generation: String) async throws -> String {
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let (recipe, name) = try ImageRecipe.resolve(generation, searchPaths: ImageRecipe.searchPaths(scenarioFile: nil))
        return try #require(try await TestGuest.runner.generation(.init(recipe: recipe, name: name)).disk)
    }

    /// A fresh directory for a test's files, under the test runs.
    static func directory(_ prefix: String) throws -> URL {
        let dir = TestGuest.runs.appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func aGettyOnTheChannelIsLoggedIntoWithTheScenariosConsoleSettings() async throws {
        let password = "pw \(UUID().uuidString.prefix(8)) 'q'"
        let fixture = try await Self.nixosFixture(version: "24.11.19700101.login", loginPassword: password)
        defer { try? HostCommand.run(["chmod", "-R", "u+w", fixture.path]) }
        let result = fixture.appendingPathComponent("result").path
        func scenario(_ password: String) -> String {
            let yamlPassword = password.replacingOccurrences(of: "'", with: "''")
            return """
            machine:
              nixos: \(result)
              console: {login: root, password: '\(yamlPassword)'}
            timeout: 90
            steps:
              - name: the harness's shell is root's, though ttyS1 runs a getty
                run: id -u; grep ^ttyS1 /etc/inittab
                expect: {stdout_equals: "0\\nttyS1::respawn:/bin/getty -L 115200 ttyS1 vt100\\n"}
            """
        }
        let good = await TestGuest.runner.run(try TestGuest.scenario(scenario(password), name: "login"))
        #expect(good.outcome == .passed, "\(good.message ?? "") \(good.steps.compactMap(\.message)) \(good.console ?? [])")
        // A wrong password fails the boot, saying why, rather than timing out.
        let bad = await TestGuest.runner.run(try TestGuest.scenario(scenario("wrong"), name: "login-bad"))
        #expect(bad.outcome == .failed)
        #expect(bad.message?.contains("refused the login as root") == true, "\(bad.message ?? "")")
    }

    @Test func aNixOSClosureBootsWithItsStoreSharedReadOnly() async throws {
        let fixture = try await Self.nixosFixture()
        let result = fixture.appendingPathComponent("result").path
        let system = try NixOSSystem(path: result)
        let store = fixture.appendingPathComponent("nix/store")
        let storeFiles = try FileManager.default.subpathsOfDirectory(atPath: store.path).sorted()
        let before = try TestGuest.fingerprint([system.kernel, system.initrd, store.appendingPathComponent(system.toplevelName + "/init").path])
        let scenario = TestGuest.runs.appendingPathComponent("scenarios/nixos-\(UUID().uuidString.prefix(8)).yaml")
        try FileManager.default.createDirectory(at: scenario.deletingLastPathComponent(), withIntermediateDirectories: true)
        try """
        machine: {nixos: \(result), memory: 384}
        timeout: 120
        steps:
          - run: . /etc/os-release; echo $ID
            expect: {stdout_equals: "nixos\\n"}
          - name: the booted system is the toplevel, started by its own init=
            run: readlink /run/current-system; tr ' ' '\\n' < /proc/cmdline | grep ^init=
            expect: {stdout_equals: "\(system.guestToplevel)\\ninit=\(system.guestToplevel)/init\\n"}
          - name: the host's store is the guest's /nix/store, read-only over 9p
            run: grep ' /nix/store ' /proc/mounts; test -x \(system.guestToplevel)/init
            expect: {stdout_contains: "nix-store /nix/store 9p ro,"}
          - fail: touch /nix/store/written-by-the-guest
          - name: the root is a fresh ext4 disk labelled nixos, and writable
            run: grep ' / ' /proc/mounts; echo hi > /root/f && cat /root/f
            expect: {stdout_contains: "/dev/vda / ext4 rw"}
        """.write(to: scenario, atomically: true, encoding: .utf8)
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        // As a gate's candidate: the path takes the place of the scenario's machine.
        let prepared = try Runner.prepare(files: [scenario.path], generation: result)[0]
        #expect(prepared.scenario.machine.system == .nixosSystem(URL(fileURLWithPath: result).standardizedFileURL.path))
        #expect(prepared.scenario.machine.image == system.name)
        let r = await TestGuest.runner.run(prepared)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.compactMap(\.message)) \(r.console ?? [])")
        let digest = try system.generation().digest
        #expect(r.boots.first?.generation == system.name && r.imageDigest == digest)
        #expect(try TestGuest.fingerprint([system.kernel, system.initrd, store.appendingPathComponent(system.toplevelName + "/init").path]) == before)
        #expect(try FileManager.default.subpathsOfDirectory(atPath: store.path).sorted() == storeFiles, "nothing was added to the store")
        let dir = try #require(r.runDirectory)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir)
        #expect(!left.contains { $0.hasPrefix("disk-") }, "the fresh root disk goes with the machine: \(left)")
        try? await TestGuest.host(["chmod", "-R", "u+w", fixture.path])
    }

    @Test func cloudInitRunsTheUserDataFromANoCloudSeed() async throws {
        let disk = try await Self.baseDisk(of: "debian-cloud")
        let before = try TestGuest.fingerprint([disk])
        let dir = try Self.directory("cloud")
        let token = UUID().uuidString
        try """
        #cloud-config
        write_files:
          - path: /var/lib/rehearse/from-user-data
            content: "\(token)\\n"
        runcmd:
          - [sh, -c, "echo runcmd ran > /var/lib/rehearse/runcmd"]
        """.write(to: dir.appendingPathComponent("user-data"), atomically: true, encoding: .utf8)
        try "instance-id: iid-\(token.prefix(8))\nlocal-hostname: rehearsed\n".write(to: dir.appendingPathComponent("meta-data"), atomically: true, encoding: .utf8)
        let p = try TestGuest.scenario("""
        machine:
          generation: debian-cloud
          memory: 512
          cloud_init: {user_data: \(dir.path)/user-data, meta_data: \(dir.path)/meta-data}
        timeout: 300
        steps:
          - name: cloud-init found the seed and finished
            run: cloud-init status --long
            expect: {stdout_contains: "DataSourceNoCloud [seed=/dev/vd"}
          - name: write_files from the user-data ran
            run: cat /var/lib/rehearse/from-user-data
            expect: {stdout_equals: "\(token)\\n"}
          - name: runcmd from the user-data ran
            run: cat /var/lib/rehearse/runcmd
            expect: {stdout_equals: "runcmd ran\\n"}
          - name: the meta-data named the host
            run: hostname
            expect: {stdout_equals: "rehearsed\\n"}
          - name: cloud-init got the user-data byte for byte
            run: sha256sum < /var/lib/cloud/instance/user-data.txt
            expect: {stdout_contains: "\(try SHA256.file(dir.appendingPathComponent("user-data").path))"}
          - name: a stock image (root locked, no autologin) gave the harness its shell through the seed's vendor-data
            run: passwd -S root | cut -d' ' -f2; systemctl is-active rehearse-channel.service
            expect: {stdout_equals: "L\\nactive\\n"}
        """, name: "cloud-init")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.compactMap(\.message)) \(r.console ?? [])")
        #expect(try TestGuest.fingerprint([disk]) == before, "the base disk is never written")
        let run = try #require(r.runDirectory)
        let left = try FileManager.default.contentsOfDirectory(atPath: run)
        #expect(!left.contains { $0.hasPrefix("cidata") || $0.hasPrefix("disk-") }, "the seed and the overlay go with the machine: \(left)")
        let xml = try String(contentsOf: URL(fileURLWithPath: run).appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("cidata.iso'/><target dev='vdb' bus='virtio'/><readonly/><serial>cidata</serial>"))
    }

    @Test func twoNixOSClosuresCompareSideBySideByPath() async throws {
        // Two builds of the fixture that differ in their version, as two nixos-rebuild builds would.
        let old = try await Self.nixosFixture(), new = try await Self.nixosFixture(version: "24.12.19700101.fixture")
        defer { for f in [old, new] { try? HostCommand.run(["chmod", "-R", "u+w", f.path]) } }
        let paths = ImageRecipe.searchPaths(scenarioFile: nil)
        let a = try Candidate.named(old.appendingPathComponent("result").path, searchPaths: paths)
        let b = try Candidate.named(new.appendingPathComponent("result").path, searchPaths: paths)
        guard case .files(.nixosSystem) = a, case .files(.nixosSystem) = b else { Issue.record("not read as NixOS systems"); return }
        let c = try await CompareRunner(runner: TestGuest.runner).compare(.init(old: a, new: b))
        #expect(c.old.generation.version == "NixOS 24.11.19700101.fixture" && c.new.generation.version == "NixOS 24.12.19700101.fixture")
        #expect(c.etc.contains { $0.path == "/etc/os-release" }, "\(c.etc)")
        #expect(c.regressions.isEmpty)
    }
}
