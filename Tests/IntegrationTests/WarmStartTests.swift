import Foundation
import Synchronization
import Testing
@testable import Rehearsal

/// Warm starts with real guests: a machine restored from a saved running
/// state is a fresh machine to its scenario, and a damaged state is never used.
@Suite(.serialized) struct WarmStartTests {
    /// A store of its own, so that what a test does to it touches no other test.
    static func privateStore() throws -> SavedStateStore {
        let dir = TestGuest.runs.appendingPathComponent("saved-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return SavedStateStore(root: dir)
    }

    static func directory(_ name: String) throws -> URL {
        let dir = TestGuest.runs.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The machines a test boots, every one destroyed when it ends, passed or failed.
    final class Fleet: Sendable {
        private let machines = Mutex<[Machine]>([])
        func boot(_ p: Runner.Prepared, _ store: SavedStateStore? = nil) async throws -> Machine {
            let m = try await TestGuest.runner.bootMachine(p, directory: try WarmStartTests.directory("warm"), deadline: .after(seconds: 300), savedStates: store)
            add(m)
            return m
        }
        func add(_ m: Machine) { machines.withLock { $0.append(m) } }
        func destroyAll() async { for m in machines.withLock({ $0 }) { await m.destroy() } }
    }

    static func using(_ body: (Fleet) async throws -> Void) async throws {
        let fleet = Fleet()
        do { try await body(fleet) } catch {
            await fleet.destroyAll()
            throw error
        }
        await fleet.destroyAll()
    }

    static func out(_ m: Machine, _ command: String) async throws -> String {
        let r = try await m.run(command, deadline: .after(seconds: 60))
        #expect(r.status == 0, "\(command): \(r.stderrText)")
        return r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func theFirstMachineKeepsItsStateAndTheNextRestoresItWithItsOwnRandomness() async throws {
        try await Self.using { fleet in
            let store = try Self.privateStore()
            let p = try TestGuest.scenario("machine: {image: tiny}\nsteps: []\n")
            let first = try await fleet.boot(p, store)
            let firstRestored = await first.restoredFrom
            #expect(firstRestored == nil)
            let made = store.list()
            #expect(made.count == 1 && made[0].generation == "tiny", "\(made)")
            #expect(try await Self.out(first, "echo still here") == "still here", "the first machine goes on after its state is kept")

            async let a = fleet.boot(p, store)
            async let b = fleet.boot(p, store)
            let (x, y) = try await (a, b)
            let (fx, fy) = (await x.restoredFrom?.id, await y.restoredFrom?.id)
            #expect(fx == made[0].id && fy == made[0].id)
            let cause = await x.boots.first?.cause
            #expect(cause == "restore \(made[0].id)")
            let random = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"
            let (rx, ry) = (try await Self.out(x, random), try await Self.out(y, random))
            #expect(rx.count == 32 && rx != ry, "two clones of one state read different random bytes: \(rx) \(ry)")
            // What a restore cannot make unique, and the record says so.
            #expect(try await Self.out(x, "cat /proc/sys/kernel/random/boot_id") == made[0].bootID)
        }
    }

    @Test func aRestoredGuestsClockIsTheHosts() async throws {
        try await Self.using { fleet in
            let store = try Self.privateStore()
            let p = try TestGuest.scenario("machine: {image: tiny}\nsteps: []\n")
            let h = try await TestGuest.runner.openHypervisor()
            let g = try await TestGuest.runner.generation(try #require(p.machineGeneration))
            let run = Runner.newRunID()
            let maker = try await Machine(name: "rehearse-\(run)", generation: g, spec: p.scenario.machine, hypervisor: h, runID: run,
                                          scenario: "clock", allowConsole: [], directory: try Self.directory("clock"), savedStates: store)
            try await maker.waitReady(deadline: .after(seconds: 180))
            // Saved as if ten minutes ago: a restore that kept the saved clock would be that far behind.
            _ = try await Self.out(maker, "date -u -s @$(( $(date +%s) - 600 )) >/dev/null")
            try await maker.keepRunningState(deadline: .after(seconds: 120))
            let note = await maker.startNote
            #expect(note?.contains("kept its state") == true, "\(note ?? "")")
            let clone = try await fleet.boot(p, store)
            let restored = await clone.restoredFrom
            #expect(restored != nil)
            for m in [maker, clone] {
                // The guest's clock, read between two readings of the host's: it must lie between
                // them, give or take the second the guest's clock is set to.
                let before = Date().timeIntervalSince1970.rounded(.down)
                let guest = try #require(Double(try await Self.out(m, "date +%s")))
                let after = Date().timeIntervalSince1970.rounded(.up)
                #expect(guest >= before - 1 && guest <= after + 1, "guest \(guest), host \(before)…\(after)")
            }
        }
    }

    @Test func aDamagedStateIsNeverRestoredAndABootMakesItAgain() async throws {
        try await Self.using { fleet in
            let store = try Self.privateStore()
            let p = try TestGuest.scenario("machine: {image: tiny}\nsteps: []\n")
            await (try await fleet.boot(p, store)).destroy()
            let state = try #require(store.list().first)
            // One byte in the middle of the guest's memory, the size unchanged.
            let file = state.stateFile.path
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
            let h = try #require(FileHandle(forUpdatingAtPath: file))
            try h.seek(toOffset: UInt64(state.stateBytes / 2))
            let byte = h.readData(ofLength: 1)[0]
            try h.seek(toOffset: UInt64(state.stateBytes / 2))
            try h.write(contentsOf: Data([byte ^ 0xff]))
            try h.close()

            let m = try await fleet.boot(p, store)
            let (mr, mn) = (await m.restoredFrom, await m.startNote)
            #expect(mr == nil)
            #expect(mn?.contains("damaged") == true, "\(mn ?? "")")
            #expect(try await Self.out(m, "echo ok") == "ok")
            let again = try #require(store.list().first)
            #expect(again.stateDigest != state.stateDigest || again.createdAt > state.createdAt, "the cold boot made the state anew")

            // A truncated one too.
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: again.stateFile.path)
            try FileHandle(forUpdatingAtPath: again.stateFile.path)!.truncate(atOffset: UInt64(again.stateBytes / 3))
            let n = try await fleet.boot(p, store)
            let (nr, nn) = (await n.restoredFrom, await n.startNote)
            #expect(nr == nil && nn?.contains("damaged") == true, "\(nn ?? "")")
        }
    }

    @Test func aDifferentMemorySizeOrColdBootMakesNoUseOfTheState() async throws {
        try await Self.using { fleet in
            let store = try Self.privateStore()
            await (try await fleet.boot(try TestGuest.scenario("machine: {image: tiny}\nsteps: []\n"), store)).destroy()
            let m = try await fleet.boot(try TestGuest.scenario("machine: {image: tiny, memory: 320}\nsteps: []\n"), store)
            await m.destroy()
            let mr = await m.restoredFrom
            #expect(mr == nil)
            let states = store.list()
            #expect(states.count == 2 && Set(states.map(\.memoryMiB)) == [256, 320], "\(states.map(\.memoryMiB))")
            let cold = try await fleet.boot(try TestGuest.scenario("machine: {image: tiny, cold_boot: true}\nsteps: []\n"), store)
            await cold.destroy()
            let (cr, cn) = (await cold.restoredFrom, await cold.startNote)
            #expect(cr == nil && cn == "boots cold: cold_boot: true", "\(cn ?? "")")
            #expect(store.list().count == 2)
        }
    }

    @Test func aRestoredScenarioGetsTheSameVerdictsAsAColdOne() async throws {
        try await Self.using { fleet in
            let steps = """
                steps:
                  - succeed: echo fine
                  - name: this one fails
                    succeed: test -e /nope
                  - succeed: echo skipped after the failure
                """
            var results: [ScenarioResult] = []
            for machine in ["{image: tiny, cold_boot: true}", "{image: tiny}", "{image: tiny}"] {
                results.append(await TestGuest.runner.run(try TestGuest.scenario("machine: \(machine)\n" + steps)))
            }
            #expect(results[0].restoredFrom == nil && results[2].restoredFrom != nil, "\(results.map(\.start))")
            for r in results {
                #expect(r.outcome == .failed && r.message?.contains("this one fails") == true, "\(r.message ?? "")")
                #expect(r.steps.map(\.outcome) == [.passed, .failed, .skipped])
            }
            let junit = ReportWriter.junit([results[2]])
            #expect(junit.contains("<property name=\"restored_from\" value=\"\(results[2].restoredFrom!)\"/>"))
        }
    }

    @Test func twoRestoredDebianMachinesCannotSeeEachOthersFiles() async throws {
        try await Self.using { fleet in
            let p = try TestGuest.scenario("machine: {image: debian, memory: 512}\nsteps: []\n")
            // The shared store: the state is made once (here, or by another test before).
            await (try await fleet.boot(p)).destroy()
            async let a = fleet.boot(p)
            async let b = fleet.boot(p)
            let (x, y) = try await (a, b)
            let (xr, yr, xn, yn) = (await x.restoredFrom, await y.restoredFrom, await x.startNote, await y.startNote)
            #expect(xr != nil && yr != nil, "\(xn ?? "") / \(yn ?? "")")
            _ = try await Self.out(x, "echo one > /var/tmp/who && touch /var/tmp/only-one && sync")
            _ = try await Self.out(y, "echo two > /var/tmp/who && sync")
            #expect(try await Self.out(x, "cat /var/tmp/who") == "one")
            #expect(try await Self.out(y, "cat /var/tmp/who; test -e /var/tmp/only-one && echo seen || echo unseen") == "two\nunseen")
            // Both go on as full machines: a reboot boots their own disks.
            _ = try await y.reboot(command: "systemctl reboot", deadline: .after(seconds: 300))
            #expect(try await Self.out(y, "cat /var/tmp/who") == "two")
        }
    }
}
