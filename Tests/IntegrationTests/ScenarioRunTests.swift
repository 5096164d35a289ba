import Foundation
import Testing
@testable import Rehearsal

/// Whole scenarios through `Runner`, each on its own fresh machine.
@Suite(.serialized) struct ScenarioRunTests {
    @Test func theSmokeScenarioPassesAndLeavesNothingRunning() async throws {
        setenv("REHEARSE_IMAGES", TestGuest.repo.appendingPathComponent("Images").path, 1)
        let p = try Runner.prepare(files: [TestGuest.repo.appendingPathComponent("Scenarios/smoke.yaml").path])[0]
        let image = try await TestGuest.runner.generation(try #require(p.machineGeneration))
        let files = [try #require(image.kernel), try #require(image.initrd)]
        let before = try TestGuest.fingerprint(files)
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        #expect(r.steps.allSatisfy { $0.outcome == .passed })
        #expect(r.bootSeconds != nil)
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        let transcript = try String(contentsOf: dir.appendingPathComponent("console.log"), encoding: .utf8)
        #expect(transcript.contains("] tiny: init done"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("domain.xml").path))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("result.json").path))
        // The image is read-only and a run leaves its bytes and times alone.
        #expect(try TestGuest.fingerprint(files) == before)
        #expect(try files.allSatisfy { (try FileManager.default.attributesOfItem(atPath: $0)[.posixPermissions] as? Int) == 0o444 })
        let name = try #require(TestGuest.domainName(inRunDirectory: dir))
        #expect(await TestGuest.eventually(10) { TestGuest.qemuPIDs(domain: name).isEmpty })
    }

    @Test func aKernelPanicFailsTheStepAtOnce() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: echo c > /proc/sysrq-trigger
            timeout: 120
          - succeed: "true"
        """, name: "panic")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed)
        let step = try #require(r.steps.first)
        // Classified as a panic from the console, not as a timeout of the step.
        #expect(step.message?.hasPrefix("kernel panic on the console") == true, "\(step.message ?? "")")
        #expect(step.console?.contains { $0.contains("Kernel panic - not syncing") } == true)
        #expect(r.steps.last?.outcome == .skipped)
    }

    @Test func aFailedStepLeavesTheKernelLogInTheRunDirectory() async throws {
        let p = try TestGuest.scenario("machine: {image: tiny}\nsteps:\n  - succeed: echo '<2>evidence-42' > /dev/kmsg; false\n", name: "evidence")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed)
        let dir = URL(fileURLWithPath: try #require(r.runDirectory))
        let dmesg = try String(contentsOf: dir.appendingPathComponent("dmesg.log"), encoding: .utf8)
        #expect(dmesg.contains("evidence-42"))
    }

    @Test func allowedConsolePatternsAreNotTrouble() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        allow_console: ["WARNING: CPU: 0 PID: 1 at rehearse/test"]
        steps:
          - succeed: |
              echo '<2>WARNING: CPU: 0 PID: 1 at rehearse/test.c:1 demo' > /dev/kmsg
          - wait_for_console: "rehearse/test.c"
            timeout: 20
          - succeed: "true"
        """, name: "allow")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
    }

    @Test func aShellThatStopsReadingEndsTheStepAtItsDeadline() async throws {
        // $$ is the harness's shell itself: once stopped it reads nothing more.
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: kill -STOP $$; sleep 100
            timeout: 2
          - succeed: "true"
        """, name: "stopped-shell")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed)
        #expect(r.steps.first?.message?.hasPrefix("timed out running `kill -STOP") == true, "\(r.steps.first?.message ?? "")")
        #expect(r.steps.last?.outcome == .skipped)
    }

    @Test func aRebootStepWaitsForTheNewBoot() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: touch /tmp/before-reboot
          - reboot
          - fail: test -e /tmp/before-reboot
        """, name: "reboot")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .passed, "\(r.message ?? "")")
        let ids = try #require(r.steps[1].stdout).split(whereSeparator: { " \n".contains($0) })
        // "boot id A -> B": two different ids.
        #expect(ids.count == 5 && ids[2] != ids[4], "\(ids)")
    }

    @Test func aCrashCutsThePowerAndBootsAgain() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: touch /tmp/in-memory
          - crash
          - name: the tiny guest lives in RAM, so nothing survives a power cut
            fail: test -e /tmp/in-memory
          - wait_for_console: "tiny: init done"
            timeout: 30
          - wait_for_console: "tiny: init done"
            timeout: 30
          - wait_for_console: "tiny: init done"
            timeout: 2
        """, name: "crash")
        let r = await TestGuest.runner.run(p)
        #expect(r.steps.prefix(5).allSatisfy { $0.outcome == .passed }, "\(r.message ?? "")")
        let ids = try #require(r.steps[1].stdout).split(whereSeparator: { " \n".contains($0) })
        #expect(ids.count == 7 && ids[4] != ids[6], "\(ids)")
        // Two boots, so the banner was on the console twice and a third wait finds nothing.
        #expect(r.steps[5].outcome == .failed)
    }

    @Test func aRebootTheScenarioDidNotAskForFailsAtOnce() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: reboot -f
            timeout: 120
        """, name: "self-reboot")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed)
        #expect(r.steps.first?.message == "the guest rebooted by itself", "\(r.steps.first?.message ?? "")")
    }

    @Test func aGuestThatPowersOffIsNoticed() async throws {
        let p = try TestGuest.scenario("""
        machine: {image: tiny}
        steps:
          - succeed: poweroff -f
            timeout: 120
        """, name: "poweroff")
        let r = await TestGuest.runner.run(p)
        #expect(r.outcome == .failed)
        #expect(r.steps.first?.message?.contains("powered off") == true, "\(r.steps.first?.message ?? "")")
    }
}
