import Foundation

extension Runner {
    /// Boots `candidate` (a generation or recipe name, a disk image or a
    /// NixOS system) for a person to look around in (`rehearse shell`):
    /// with the `machine:` settings of the scenario `file` when given, its
    /// transcripts in a run directory of its own. A failed unit does not
    /// stop it (the person is there to see it). The caller owns the machine
    /// and destroys it; a boot that fails leaves nothing running. In a
    /// scenario with several machines, `machine` (default: the first) is the
    /// one whose settings it boots with, alone and with no network.
    public func shellMachine(_ candidate: String, scenario file: String?, machine name: String? = nil) async throws -> (machine: Machine, directory: URL) {
        var p: Prepared
        if let file {
            let named = name.map { [$0] } ?? []
            p = try Runner.prepare(files: [file], generation: candidate, machines: named)[0]
            p = p.role(try p.scenario.machinesNamed(named)[0], network: nil)
        } else {
            let spec = MachineSpec(image: candidate, imageLine: 0, memoryMiB: MachineSpec.defaultMemoryMiB, cpus: 1)
            p = try Runner.prepare(Scenario.empty(machine: spec, name: "shell"), generation: candidate)
        }
        let runID = Runner.newRunID()
        let base = options.runsDirectory ?? options.state.runs
        let directory: URL
        do { directory = try options.state.create(base.appendingPathComponent("\(runID)-shell")) } catch {
            throw RehearsalError.infrastructure("cannot create the run directory: \(error)")
        }
        do {
            let machine = try await bootMachine(p, runID: runID, directory: directory, deadline: .after(seconds: p.scenario.timeout), bootCheck: false)
            return (machine, directory)
        } catch let e as BootFailure {
            let tail = (e.console ?? []).suffix(5).map { "\n  console │ \($0)" }.joined()
            throw RehearsalError(e.error.code, "boot: \(e.error)\(tail)")
        }
    }
}
