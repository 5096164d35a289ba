import Foundation
import Libvirt

/// Checkpoints and rollback. A checkpoint keeps the disk state and the
/// booted generation; with `memory`, the running machine too (its memory
/// and device state, in a save image beside the frozen disk), so that a
/// rollback resumes it where it was in a second or two instead of booting.
extension Machine {
    struct Checkpoint {
        /// The frozen disk file holding the disk state then (nil: the machine has no disk).
        let layer: URL?
        let generation: Generation
        /// The save image, and the disk file its domain XML names (the layer, which was active then).
        let memory: (file: URL, xml: String)?
    }

    /// Keeps the disk state and the booted generation as they are now: the
    /// guest syncs, then a live disk-only snapshot freezes the current overlay
    /// and the guest writes to a new one (crash-consistent, like an LVM or
    /// btrfs snapshot taken on a running host). With `memory`, the running
    /// machine is saved as well, and goes on from the save. Returns the
    /// checkpoint's number.
    @discardableResult
    public func checkpoint(memory: Bool = false, deadline: Deadline) async throws -> Int {
        if memory { return try await checkpointMemory(deadline: deadline) }
        guard var disk = files.disk else { throw RehearsalError.scenario("this machine has no disk to checkpoint (a `checkpoint: {memory: true}` keeps its memory)") }
        guard let domain else { throw RehearsalError.infrastructure("the machine is powered off") }
        _ = try await run("sync", deadline: deadline)
        let next = disk.nextFile()
        let snapshot = """
            <domainsnapshot><disks>\
            <disk name='vda' snapshot='external'><driver type='qcow2'/><source file='\(next.path)'/></disk>\
            \(files.readOnlyDisks.indices.map { "<disk name='\(DomainXML.readOnlyTarget($0))' snapshot='no'/>" }.joined())\
            </disks></domainsnapshot>
            """
        do {
            try await offload { try domain.snapshotDisks(xml: snapshot) }
        } catch let e as LibvirtError {
            try? FileManager.default.removeItem(at: next)
            throw RehearsalError.infrastructure("taking a checkpoint failed: \(e.message)", underlying: e)
        }
        disk.froze(next: next)
        files.disk = disk
        checkpoints.append(Checkpoint(layer: disk.frozen.last!, generation: generation, memory: nil))
        return checkpoints.count
    }

    /// Saves the running machine (which stops it), freezes its disk file,
    /// and resumes it from the save on a new overlay.
    private func checkpointMemory(deadline: Deadline) async throws -> Int {
        if generation.nixStore != nil {
            throw RehearsalError.scenario("`checkpoint: {memory: true}` cannot keep this machine: libvirt cannot save a guest with a 9p mount (its Nix store); use a plain `checkpoint`")
        }
        guard let domain else { throw RehearsalError.infrastructure("the machine is powered off") }
        let n = checkpoints.count + 1
        let file = directory.appendingPathComponent("checkpoint-\(n).save")
        let layer = files.disk?.active
        do { try await saveRunning(domain, to: file) } catch {
            throw RehearsalError.infrastructure("keeping the machine's memory for checkpoint \(n) failed: \(error)")
        }
        let xml: String
        do {
            if stopRequested { throw RehearsalError.interrupted("stopped while keeping checkpoint \(n)") }
            xml = try await offload { try SaveImage(file: file.path).xml }
            if var disk = files.disk {
                try disk.freeze()
                files.disk = disk
            }
        } catch {
            // The save is the machine's only running state: resume it on the disk it wrote, then let it go.
            defer { try? FileManager.default.removeItem(at: file) }
            if !stopRequested {
                io.restart()
                let header = (try? SaveImage(file: file.path).xml) ?? domainXML().render()
                try? await powerOn(restoring: Restoring(file: file, xml: header, inHeader: true))
                if power.isOn { try? await shell.resume(deadline: deadline) }
            }
            if let e = error as? RehearsalError, e.code == .interrupted { throw e }
            throw RehearsalError.infrastructure("keeping checkpoint \(n) failed: \(error)")
        }
        // Recorded before resuming: a failed resume still leaves a checkpoint to roll back to.
        checkpoints.append(Checkpoint(layer: layer, generation: generation, memory: (file, xml)))
        _ = try await resume(n, cause: nil, deadline: deadline)
        return n
    }

    /// Powers off and boots the latest checkpoint: its disk state and its
    /// generation (a checkpoint with memory resumes where it was). With no
    /// checkpoint, boots the generation that was booted before the last
    /// `boot(_:)`, on the disk as it is. Returns what it booted.
    @discardableResult
    public func rollback(deadline: Deadline) async throws -> String {
        if let c = checkpoints.last {
            let n = checkpoints.count
            await powerOff()
            if let layer = c.layer, var disk = files.disk {
                try disk.reset(to: layer)
                files.disk = disk
            }
            generation = c.generation
            if c.memory != nil {
                _ = try await resume(n, cause: "rollback to checkpoint \(n) (memory)", deadline: deadline)
                return "checkpoint \(n) (\(c.generation.name), running as it was)"
            }
            _ = try await powerOnAgain(cause: "rollback to checkpoint \(n)", deadline: deadline)
            return "checkpoint \(n) (\(c.generation.name))"
        }
        guard let previous = previousGeneration else {
            throw RehearsalError.scenario("nothing to roll back to: no checkpoint and no earlier `boot:`")
        }
        try await shutDown(deadline: deadline)
        previousGeneration = generation
        generation = previous
        _ = try await powerOnAgain(cause: "rollback to \(previous.name)", deadline: deadline)
        return previous.name
    }

    /// Restores checkpoint `c`'s saved machine on the current disk overlay
    /// (powered off) and resumes its shell, with the host's time and fresh
    /// randomness. `cause` names the boot it records (nil: it goes on from
    /// a checkpoint, no new boot). Returns `deadline` moved on by the wait for a boot slot.
    private func resume(_ n: Int, cause: String?, deadline: Deadline) async throws -> Deadline {
        let c = checkpoints[n - 1]
        guard let memory = c.memory else { return deadline }
        // The save names the disk file that was active then (now frozen): the guest writes to the new one.
        let xml = try Self.retarget(memory.xml, from: c.layer.map { ["overlay": $0.path] } ?? [:], to: filePaths)
        io.restart()
        if stopRequested { throw RehearsalError.interrupted("stopped before resuming checkpoint \(n)") }
        return try await withBootSlot(deadline: deadline) { deadline in
            let clock = Stopwatch()
            do {
                try await powerOn(restoring: Restoring(file: memory.file, xml: xml, inHeader: false))
            } catch {
                throw RehearsalError.infrastructure("resuming the machine kept by checkpoint \(n) failed: \(error)")
            }
            try await shell.resume(deadline: deadline)
            try await freshen(deadline: deadline)
            if let cause {
                let kernel = try? await run("uname -r", deadline: deadline).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
                boots.append(BootRecord(generation: generation.name, digest: generation.digest, kernelRelease: kernel,
                                        cause: cause, secondsToShell: clock.seconds, started: Date(timeIntervalSinceNow: -clock.seconds)))
            }
        }
    }
}
