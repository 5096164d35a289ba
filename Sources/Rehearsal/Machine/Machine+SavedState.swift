import Foundation
import Libvirt

/// Warm starts: a machine whose identity has a saved state restores it
/// instead of booting; the first machine of an identity boots, and once
/// it is ready (`keepRunningState`) its running state is saved for the next.
///
/// A restore gets its own overlay over the saved disk and a copy of the
/// save image whose header names this machine (its name, UUID, metadata and
/// files); after it, the guest's random number generator is reseeded from
/// the host and its clock set to the host's (`freshen`). The boot id and
/// `/etc/machine-id` stay those of the saved boot: the record says so.
/// Anything that goes wrong with a saved state ends in a cold boot and a note.
extension Machine {
    enum WarmPart {
        case none
        /// This machine booted cold and makes state `id` once ready (holding its lock).
        case make(id: String, inputs: [String], lock: FileLock)
        /// Restored from `state`, held in use (a shared lock) until destroyed.
        case restored(SavedState, lock: FileLock)
    }

    /// Why a machine must boot cold whatever the store holds; nil when it may start warm.
    public static func coldReason(generation: Generation, spec: MachineSpec) -> String? {
        if spec.coldBoot { return "cold_boot: true" }
        if generation.nixStore != nil { return "its Nix store is shared over 9p, and libvirt cannot save a guest with a 9p mount" }
        if spec.ignition != nil { return "Ignition runs at its first boot" }
        if spec.cloudInit != nil { return "cloud-init's first boot is what it runs" }
        if spec.console != nil { return "it logs in on the console" }
        if spec.network != nil { return "it is on a private network, whose cards a saved state cannot carry" }
        return nil
    }

    /// The first power-on: a restore when the store has this identity's
    /// state, else a boot (which makes the state when this machine may).
    func firstPowerOn() async throws {
        guard let store = savedStates else { return try await powerOn() }
        let identity: (id: String, inputs: [String])
        do { identity = try await self.identity() } catch {
            startNote = "boots cold: its identity could not be read (\(error))"
            return try await powerOn()
        }
        // Held for as long as this machine's disk is backed by the state: it is not removed meanwhile.
        if let use = store.lockForUse(identity.id) {
            var unusable = false
            var found: SavedState?
            do { found = try await offload { try store.find(identity.id) } } catch {
                startNote = "boots cold: \(error)"
                unusable = true
            }
            if let state = found {
                do {
                    try await restore(state, carryConsole: true)
                    warm = .restored(state, lock: use)
                    restoredFrom = state
                    startNote = "restored from saved state \(state.id) (made \(Self.age(state.createdAt)) ago from a \(String(format: "%.1f", state.coldBootSeconds)) s boot)"
                    return
                } catch {
                    startNote = "boots cold: restoring saved state \(state.id) failed (\(error))"
                    unusable = true
                    await powerOff()
                    io.restart()
                    try await resetDisk(over: generation.disk, format: generation.diskFormat ?? "qcow2")
                }
            }
            use.unlock()
            // A state that cannot be used goes, so that this boot makes it anew (unless others use it).
            if unusable { await offload { _ = store.remove(identity.id) } }
        }
        if let lock = try? store.lockForMaking(identity.id) {
            if (try? store.find(identity.id)) != nil {
                // Made by another machine since we looked: the next machine restores it.
                lock.unlock()
                if startNote == nil { startNote = "boots cold: saved state \(identity.id) was being made" }
            } else {
                warm = .make(id: identity.id, inputs: identity.inputs, lock: lock)
                if startNote == nil { startNote = "boots cold, and keeps its state as \(identity.id) once ready" }
            }
        } else if startNote == nil {
            startNote = "boots cold: another machine is making saved state \(identity.id) now"
        }
        try await powerOn()
    }

    /// The identity of this machine's first power-on (`SavedStateStore.identity`).
    func identity() async throws -> (id: String, inputs: [String]) {
        // The machine's own domain with what is per run or per machine left out.
        var x = domainXML()
        (x.name, x.runID, x.scenario) = ("rehearse-saved", "", "")
        x.owner = Owner(host: nil, pid: 1, startTime: nil)
        x.disk = x.disk == nil ? nil : "overlay"
        let disks = x.readOnlyDisks
        // Attached disks count by content: their files are per machine.
        let digests = try await offload { try disks.map { try SHA256.file($0.file) } }
        x.readOnlyDisks = zip(disks, digests).map { ReadOnlyDisk(file: $1, serial: $0.serial) }
        let versions = try hypervisor.connection.versions()
        // Under KVM the guest sees the host's CPU: a state is for that CPU only.
        let cpu = hypervisor.accelerator == .kvm ? ["host cpu \(Self.hostCPU)"] : []
        return SavedStateStore.identity(xml: x.render(), generation: generation, diskDigests: digests, versions: versions, host: cpu)
    }

    static var hostCPU: String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let lines = info.split(separator: "\n")
        let model = lines.first { $0.hasPrefix("model name") }.map(String.init) ?? "?"
        let flags = lines.first { $0.hasPrefix("flags") }.map { SHA256.hex(Data($0.utf8)).prefix(12) } ?? "?"
        return "\(model) flags \(flags)"
    }

    /// Restores `state` as this machine: a fresh overlay over its disk, a
    /// copy of its save image naming this machine, then the domain.
    func restore(_ state: SavedState, carryConsole: Bool = false) async throws {
        if files.disk != nil {
            let directory = self.directory
            files.disk?.remove()
            files.disk = try await offload { try DiskChain(base: state.disk.path, format: "qcow2", directory: directory) }
        }
        let copy = directory.appendingPathComponent("restore.save")
        defer { try? FileManager.default.removeItem(at: copy) }
        let paths = filePaths
        let metadata = DomainXML.metadataElement(runID: runID, scenario: scenario, owner: .current)
        let name = self.name
        let xml = try await offload {
            let image = try SaveImage(file: state.stateFile.path)
            let xml = try Self.cloneXML(image.xml, name: name, metadata: metadata, from: state.paths, to: paths)
            try image.copy(from: state.stateFile.path, to: copy.path, xml: xml)
            return xml
        }
        io.restart()
        if carryConsole, let text = try? String(contentsOf: state.console, encoding: .utf8) {
            io.carryConsole(text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
                            + ["rehearse: restored from saved state \(state.id)"])
        }
        try await powerOn(restoring: Restoring(file: copy, xml: xml, inHeader: true))
    }

    /// The files its domain XML names, by role: a clone names its own.
    var filePaths: [String: String] {
        var paths: [String: String] = [:]
        if let d = files.disk?.active.path { paths["overlay"] = d }
        if let p = files.payload?.disk.path { paths["payload"] = p }
        if let seed = files.seed?.image.path { paths["seed"] = seed }
        return paths
    }

    /// The saved XML with this machine's name, a new UUID, its metadata and
    /// its own files (new overlay → saved disk → base).
    static func cloneXML(_ saved: String, name: String, metadata: String, from old: [String: String], to new: [String: String]) throws -> String {
        var x = saved
        func replaceFirst(_ pattern: String, with text: String) {
            if let r = x.range(of: pattern, options: .regularExpression) { x.replaceSubrange(r, with: text) }
        }
        replaceFirst("<name>[^<]*</name>", with: "<name>\(XMLText.escape(name))</name>")
        replaceFirst("<uuid>[^<]*</uuid>", with: "<uuid>\(UUID().uuidString.lowercased())</uuid>")
        // A new VM generation id: a Linux guest with vmgenid reseeds its RNG at once.
        replaceFirst("<genid>[^<]*</genid>", with: "<genid>\(UUID().uuidString.lowercased())</genid>")
        replaceFirst("<rh:machine [^>]*/>", with: metadata)
        return try retarget(x, from: old, to: new)
    }

    /// The saved XML naming the files `new` gives by role instead of `old`'s.
    /// Recorded backing chains go: QEMU reads the real one from the files.
    static func retarget(_ saved: String, from old: [String: String], to new: [String: String]) throws -> String {
        var x = saved.replacingOccurrences(of: #"<backingStore\s*/>"#, with: "", options: .regularExpression)
        // Innermost first, so that nested chains come out whole.
        while let r = x.range(of: #"<backingStore\b[^>]*>(?:(?!<backingStore)[\s\S])*?</backingStore>"#, options: .regularExpression) {
            x.removeSubrange(r)
        }
        for (role, path) in old {
            // The maker restoring itself names the same files: nothing to rewrite.
            guard let n = new[role], n != path else { continue }
            for form in Set([XMLText.escape(path), path.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "'", with: "&apos;")]) {
                x = x.replacingOccurrences(of: form, with: XMLText.escape(n))
            }
            if x.contains(path) || x.contains(XMLText.escape(path)) {
                throw RehearsalError.infrastructure("the saved state still names \(path) after it was rewritten for this machine")
            }
        }
        return x
    }

    /// After a restore: the guest's RNG gets the host's randomness and its
    /// clock the host's time (clones must not share either).
    func freshen(deadline: Deadline) async throws {
        var rng = SystemRandomNumberGenerator()
        let seed = (0..<64).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let now = Int(Date().timeIntervalSince1970.rounded())
        let r = try await run("printf %s \(seed) >/dev/urandom && date -u -s @\(now) >/dev/null", deadline: deadline)
        guard r.status == 0 else {
            throw RehearsalError.infrastructure("setting a restored guest's clock and random seed failed: \(r.stderrText.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }

    /// Once the first boot of an identity is ready (its boot check passed):
    /// saves its running state, keeps it, and goes on as a restore of it,
    /// so this machine and every later one start from the same state.
    /// Failing to save is not the scenario's failure: the machine goes on
    /// (booted again on its disk if it had stopped). Throws only when it
    /// cannot be brought back, or when it is being stopped.
    public func keepRunningState(deadline: Deadline) async throws {
        guard case .make(let id, let inputs, let lock) = warm, let store = savedStates, let domain else { return }
        warm = .none
        var making: FileLock? = lock
        defer { making?.unlock() }
        let bootID = try? await self.bootID(deadline: deadline)
        let machineID = try? await run("cat /etc/machine-id", deadline: deadline).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try? await run("sync", deadline: deadline)
        if stopRequested { return }
        let paths = filePaths
        let file = directory.appendingPathComponent("state.save.partial")
        do { try await saveRunning(domain, to: file) } catch {
            startNote = "boots cold: saving its state failed (\(error))"
            return
        }
        let record = SavedState(id: id, generation: generation.name, generationDigest: generation.digest, memoryMiB: spec.memoryMiB,
                                cpus: spec.cpus, createdAt: Date(), coldBootSeconds: readySeconds ?? started.seconds,
                                stateBytes: (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int64) ?? 0,
                                stateDigest: "", bootID: bootID, machineID: machineID, paths: paths, inputs: inputs)
        let overlay = files.disk?.active
        var kept: SavedState?
        do {
            let console = io.consoleLines
            let state = try await offload { try store.commit(record, stateFile: file, overlay: overlay, console: console) }
            kept = state
            // From making it to using it, on the same lock: nothing removes it in between.
            lock.downgrade()
            making = nil
            warm = .restored(state, lock: lock)
            if stopRequested { throw RehearsalError.interrupted("stopped while keeping its state") }
            try await restore(state)
            try await shell.resume(deadline: deadline)
            try await freshen(deadline: deadline)
            // Why it booted cold (a damaged state, say) stays in the note.
            let why = startNote.flatMap { $0.hasPrefix("boots cold, and keeps") ? nil : $0 }
            startNote = (why.map { "\($0); " } ?? "") + "booted cold and kept its state as \(state.id)"
        } catch {
            try? FileManager.default.removeItem(at: file)
            startNote = "booted cold; keeping its state failed (\(error))"
            if stopRequested { throw error }
            // Boot again on the disk it has: its own overlay (a failed commit
            // puts it back), or a fresh one over the kept disk (held in use).
            await powerOff()
            io.restart()
            if let active = files.disk?.active, !FileManager.default.fileExists(atPath: active.path), let kept {
                try await resetDisk(over: kept.disk.path, format: "qcow2")
            }
            nextBootCause = "power on (after a failed save)"
            try await powerOn()
            try await connected(deadline: deadline)
        }
    }

    /// Saves the running machine to `file` (libvirt's save image), which
    /// stops it, and lets go of its power-on. On failure it runs on and no file is left.
    func saveRunning(_ domain: Domain, to file: URL) async throws {
        io.markStopping()
        do {
            try await offload { try domain.save(to: file.path) }
        } catch {
            try? FileManager.default.removeItem(at: file)
            io.unmarkStopping()
            throw error
        }
        await powerOff()
    }

    /// Whether the machine is being stopped (destroyed, a signal, cancellation): start nothing new.
    var stopRequested: Bool { isDestroyed || Interruption.shared.requested != nil || Task.isCancelled }

    /// A fresh overlay over `base` in place of the machine's disk chain.
    private func resetDisk(over base: String?, format: String) async throws {
        guard files.disk != nil else { return }
        guard let base else { throw RehearsalError.infrastructure("the machine's disk cannot be made again") }
        let directory = self.directory
        files.disk?.remove()
        files.disk = try await offload { try DiskChain(base: base, format: format, directory: directory) }
    }

    /// Records why this machine started as it did (the runner's reasons for a cold boot).
    func noteStart(_ note: String) { startNote = note }

    static func age(_ date: Date) -> String {
        let s = Int(-date.timeIntervalSinceNow)
        return s < 120 ? "\(s) s" : s < 7200 ? "\(s / 60) min" : s < 172_800 ? "\(s / 3600) h" : "\(s / 86400) days"
    }
}
