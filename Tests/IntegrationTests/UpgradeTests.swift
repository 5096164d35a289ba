import Foundation
import Testing
@testable import Rehearsal

/// Whole upgrade paths on the real Debian guest under TCG (about 20 s a
/// boot): the shipped scenarios, and generations, checkpoints and rollback.
@Suite(.serialized) struct UpgradeTests {
    static func shipped(_ name: String) throws -> Runner.Prepared {
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        return try Runner.prepare(files: [TestGuest.repo.appendingPathComponent("Scenarios/\(name)").path])[0]
    }

    @Test func theAppUpgradePassesAndLeavesTheBaseDiskAlone() async throws {
        let p = try Self.shipped("upgrade-app.yaml")
        let g = try await TestGuest.runner.generation(try #require(p.machineGeneration))
        let base = try #require(g.disk)
        let before = try TestGuest.fingerprint([base])
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        // Two boots of the same generation: the first, and the reboot after the upgrade.
        #expect(TestGuest.causes(r) == ["power on", "reboot"])
        #expect(r.boots.allSatisfy { $0.generation == "debian" && $0.digest == g.digest })
        let answer = r.steps.first { $0.name == "demo 2.0 answers" }
        #expect(answer?.stdout == "rehearse-demo 2.0: hello, world\n")
        #expect(try TestGuest.fingerprint([base]) == before)
        // The overlay and the payload disk went with the machine.
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".qcow2") || $0.hasSuffix(".img") }
        #expect(left.isEmpty, "\(left)")
        let xml = try String(contentsOf: dir.appendingPathComponent("domain.xml"), encoding: .utf8)
        #expect(xml.contains("<readonly/><serial>rehearse-payload</serial>"))
    }

    @Test func theBrokenUpgradeFailsAtTheRebootAndRollbackBringsBackOneDotZero() async throws {
        let p = try Self.shipped("upgrade-broken.yaml")
        let r = await TestGuest.runner.run(p)
        let reboot = r.steps[4]
        #expect(reboot.kind == "reboot")
        // The boot check after the reboot is what fails, pointing at the unit, with its state and journal.
        #expect(reboot.outcome == .expectedFailure, "\(reboot.outcome) \(reboot.message ?? "")")
        #expect(reboot.message == "after boot: a unit failed: rehearse-demo.service")
        #expect(reboot.stdout?.contains("Active: failed") == true, "\(reboot.stdout ?? "")")
        #expect(reboot.stdout?.contains("JSON/XS.pm") == true, "\(reboot.stdout ?? "")")
        #expect(r.steps.prefix(4).allSatisfy { $0.outcome == .passed })
        // Then the rollback brings back the checkpoint: demo 1.0 answering, generation debian.
        #expect(r.steps.suffix(5).allSatisfy { $0.outcome == .passed }, "\(r.message ?? "")")
        #expect(r.outcome == .passed)
        #expect(TestGuest.causes(r) == ["power on", "reboot", "rollback to checkpoint 1"])
        // The expected failure's evidence is in the run directory too.
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        let failed = try String(contentsOf: dir.appendingPathComponent("step5-failed-units.txt"), encoding: .utf8)
        #expect(failed.contains("rehearse-demo.service"))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".qcow2") }
        #expect(left.isEmpty, "checkpoints and overlays are removed with the machine: \(left)")
    }

    /// `boot:` keeps the disk and switches generation (here to firmware boot
    /// through GRUB); a reboot that never comes back fails at its deadline
    /// with the console; `rollback` returns to the checkpoint even then.
    @Test func bootAnotherGenerationAndRollBackFromARebootThatNeverReturns() async throws {
        let p = try TestGuest.scenario("""
        machine: {generation: debian, memory: 512}
        timeout: 900
        steps:
          - succeed: echo before > /root/state && sync
          - checkpoint
          - boot: debian-firmware
          - booted: {generation: debian-firmware}
          - name: the disk was kept
            run: cat /root/state
            expect: {stdout_equals: "before\\n"}
          - succeed: echo after > /root/state && systemctl mask serial-getty@ttyS1.service && sync
          - name: a reboot that never comes back
            reboot:
            timeout: 45
            expect_failure: the harness's shell is masked
          - rollback
          - booted: {generation: debian}
          - name: the checkpoint's disk state is back
            run: cat /root/state
            expect: {stdout_equals: "before\\n"}
        """, name: "generations")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        let never = r.steps[6]
        #expect(never.outcome == .expectedFailure)
        #expect(never.message?.contains("timed out") == true, "\(never.message ?? "")")
        #expect(never.message?.contains("step timeout 45 s") == true, "\(never.message ?? "")")
        #expect(never.console?.isEmpty == false, "a reboot that never returns quotes the console")
        #expect(r.boots.map(\.generation) == ["debian", "debian-firmware", "debian"])
        #expect(TestGuest.causes(r) == ["power on", "boot debian-firmware", "rollback to checkpoint 1"])
        let fw = try await TestGuest.runner.generation(try #require(p.generations["debian-firmware"]))
        #expect(r.boots[1].digest == fw.digest)
    }

    /// `checkpoint: {memory: true}` keeps the running machine: a rollback
    /// resumes it (what was only in memory, and the same boot) on the
    /// checkpoint's disk, as often as asked, and leaves no file behind.
    @Test func aMemoryCheckpointResumesTheRunningMachine() async throws {
        let p = try TestGuest.scenario("""
        machine: {generation: debian, memory: 512}
        steps:
          - succeed: echo kept > /run/in-memory && echo before > /root/state && cat /proc/sys/kernel/random/boot_id > /root/boot && sync
          - checkpoint: {memory: true}
          - succeed: echo after > /root/state && rm /run/in-memory && sync
          - rollback
          - name: the running machine is back
            run: cat /run/in-memory /root/state; [ "$(cat /proc/sys/kernel/random/boot_id)" = "$(cat /root/boot)" ] && echo same boot
            expect: {stdout_equals: "kept\\nbefore\\nsame boot\\n"}
          - succeed: rm /run/in-memory && echo again > /root/state
          - rollback
          - run: cat /run/in-memory /root/state
            expect: {stdout_equals: "kept\\nbefore\\n"}
        """, name: "memory-checkpoint")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "") \(r.steps.map { "\($0.name): \($0.outcome) \($0.message ?? "")" })")
        #expect(TestGuest.causes(r) == ["power on", "rollback to checkpoint 1 (memory)", "rollback to checkpoint 1 (memory)"])
        #expect(r.steps[1].stdout?.contains("memory and devices") == true)
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".qcow2") || $0.hasSuffix(".save") }
        #expect(left.isEmpty, "checkpoint files go with the machine: \(left)")
    }
}

/// Kernel upgrades, which take minutes under TCG: a suite of their own, so
/// that it runs beside the other upgrade tests.
@Suite(.serialized) struct KernelUpgradeTests {
    /// Firmware boot makes a kernel upgrade real: what the guest installs
    /// into /boot (and update-grub picks) is what boots next.
    @Test func theKernelUpgradeBootsTheNewKernel() async throws {
        let p = try UpgradeTests.shipped("kernel-upgrade.yaml")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect(r.boots.count == 2 && r.boots.allSatisfy { $0.generation == "debian-firmware" })
        let kernels = r.boots.compactMap(\.kernelRelease)
        #expect(kernels.count == 2 && kernels[0] != kernels[1], "\(kernels)")
    }

    @Test func aPowerCutInTheMiddleOfAnUpgradeIsRecovered() async throws {
        let p = try UpgradeTests.shipped("power-cut.yaml")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect(TestGuest.causes(r) == ["power on", "power cut"])
    }
}
