import Foundation

/// The files a machine makes for itself in its run directory: the writable
/// disk chain (or a fresh root disk), the copy of its Ignition config, the
/// payload disk and the cloud-init seed. Made together, removed together.
struct MachineFiles: Sendable {
    var disk: DiskChain?
    var ignition: URL?
    var payload: Payload?
    var seed: CloudInitSeed?

    /// Makes every file; if one can't be made, those already made are removed.
    static func make(for generation: Generation, spec: MachineSpec, payload: URL?, in directory: URL) throws -> MachineFiles {
        var files = MachineFiles()
        do {
            // The base disk is never opened for writing: the guest gets an overlay.
            if let base = generation.disk {
                files.disk = try DiskChain(base: base, format: generation.diskFormat ?? "qcow2", directory: directory)
            } else if let label = generation.freshRootLabel {
                files.disk = try DiskChain(freshExt4: label, sizeMiB: NixOSSystem.rootDiskMiB, directory: directory)
            }
            // The guest reads its Ignition config from a copy that nothing else can change mid-run.
            if let source = spec.ignition {
                let copy = directory.appendingPathComponent("ignition.json")
                do {
                    try? FileManager.default.removeItem(at: copy)
                    try FileManager.default.copyItem(at: URL(fileURLWithPath: source), to: copy)
                } catch {
                    throw RehearsalError.infrastructure("copying the Ignition config failed: \(error)")
                }
                files.ignition = copy
            }
            files.payload = try payload.map { try Payload.make(from: $0, in: directory) }
            files.seed = try spec.cloudInit.map { try CloudInitSeed.make(from: $0, in: directory) }
        } catch {
            files.remove()
            throw error
        }
        return files
    }

    /// The payload and the cloud-init seed, in the order they are attached.
    var readOnlyDisks: [ReadOnlyDisk] {
        (payload.map { [ReadOnlyDisk(file: $0.disk.path, serial: Payload.serial)] } ?? [])
            + (seed.map { [ReadOnlyDisk(file: $0.image.path, serial: CloudInitSeed.serial)] } ?? [])
    }

    /// Removes every file (the Ignition copy stays: it is evidence, and small).
    func remove() {
        disk?.remove()
        payload?.remove()
        seed?.remove()
    }
}
