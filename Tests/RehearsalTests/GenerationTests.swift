import Foundation
import Testing
@testable import Rehearsal

/// Generations: the scenario keys that name them, how a recipe's output is
/// sealed into digest-identified generations, and how they boot.
@Suite struct GenerationTests {
    func parse(_ yaml: String, file: String = "t.yaml") throws -> Scenario {
        try ScenarioParser.parse(text: yaml, file: file)
    }

    func error(_ yaml: String) -> RehearsalError? {
        do { _ = try parse(yaml); return nil } catch let e as RehearsalError { return e } catch { return nil }
    }

    @Test func generationStepsParse() throws {
        let s = try parse("""
        machine: {generation: debian, payload: "image:debian/repo"}
        steps:
          - checkpoint
          - boot: debian-firmware
          - booted: {generation: debian-firmware, kernel: "6\\\\.1\\\\..*"}
          - name: back
            rollback:
            timeout: 50
          - succeed: "false"
            expect_failure: known bug 42
        """)
        #expect(s.machine.image == "debian")
        #expect(s.machine.payload == .recipe("debian", payload: "repo"))
        #expect(s.steps.map(\.kind) == ["checkpoint", "boot", "booted", "rollback", "succeed"])
        guard case .boot(let g) = s.steps[1].action, case .booted(let bg, let k) = s.steps[2].action else {
            Issue.record("wrong actions"); return
        }
        #expect(g == "debian-firmware" && bg == "debian-firmware")
        #expect(k?.matchesWhole("6.1.0-56-amd64") == true)
        #expect(k?.matchesWhole("x6.1.0") == false)
        #expect(s.steps[3].name == "back" && s.steps[3].timeout == 50)
        #expect(s.steps[4].expectedFailure == "known bug 42")
        #expect(s.steps[0].expectedFailure == nil)
        guard case .checkpoint(memory: false) = s.steps[0].action else { Issue.record("a bare checkpoint keeps the disk only"); return }
        let m = try parse("machine: {generation: a}\nsteps:\n  - checkpoint: {memory: true}\n  - name: kept\n    checkpoint: {memory: false}\n")
        guard case .checkpoint(memory: true) = m.steps[0].action, case .checkpoint(memory: false) = m.steps[1].action else {
            Issue.record("checkpoint: {memory: …} parses to its value"); return
        }
        #expect(m.steps.map(\.name) == ["checkpoint (memory)", "kept"])
    }

    @Test func badGenerationKeysPointAtTheLine() {
        #expect(error("machine: {generation: a, image: b}\nsteps: []\n")?.line == 1)
        #expect(error("machine: {generation: a, payload: \"image:debian\"}\nsteps: []\n")?.message.contains("image:RECIPE/NAME") == true)
        #expect(error("machine: {generation: a, payload: /no/such/dir}\nsteps: []\n")?.message.contains("not a directory") == true)
        #expect(error("machine: {generation: a}\nsteps:\n  - checkpoint: now\n")?.line == 3)
        #expect(error("machine: {generation: a}\nsteps:\n  - checkpoint: now\n")?.message.contains("{memory: true}") == true)
        #expect(error("machine: {generation: a}\nsteps:\n  - checkpoint: {memroy: true}\n")?.message.contains("memroy") == true)
        #expect(error("machine: {generation: a}\nsteps:\n  - succeed: x\n  - checkpoint: {memory: maybe}\n")?.line == 4)
        #expect(error("machine: {generation: a}\nsteps:\n  - booted: {}\n")?.message.contains("generation") == true)
        #expect(error("machine: {generation: a}\nsteps:\n  - booted: {kernel: x, colour: red}\n")?.message.contains("colour") == true)
        #expect(error("machine: {generation: a}\nsteps:\n  - succeed: x\n    expect_failure: \"\"\n")?.line == 4)
    }

    @Test func aDiskImageAndAnIgnitionConfigAreHostFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "x".write(to: dir.appendingPathComponent("os.qcow2"), atomically: true, encoding: .utf8)
        try "{}".write(to: dir.appendingPathComponent("c.ign"), atomically: true, encoding: .utf8)
        let s = try parse("machine: {disk: os.qcow2, format: raw, ignition: c.ign}\nsteps: []\n", file: dir.appendingPathComponent("s.yaml").path)
        #expect(s.machine.system == .diskImage(dir.appendingPathComponent("os.qcow2").path, format: "raw"))
        #expect(s.machine.ignition == dir.appendingPathComponent("c.ign").path && s.machine.image == "os.qcow2")
        #expect(error("machine: {disk: /no/such.qcow2}\nsteps: []\n")?.message.contains("no such file") == true)
        #expect(error("machine: {generation: tiny, format: raw}\nsteps: []\n")?.message.contains("`disk`") == true)
        #expect(error("machine: {generation: tiny, ignition: /no/such.ign}\nsteps: []\n")?.line == 1)
    }

    @Test func aPayloadDirectoryIsRelativeToTheScenario() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("files"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try parse("machine: {generation: tiny, payload: files}\nsteps: []\n", file: dir.appendingPathComponent("s.yaml").path)
        #expect(s.machine.payload == .directory(dir.appendingPathComponent("files").path))
    }

    /// A fake recipe output: two generations sharing one disk, the second derived from the first.
    func fakeBuild(kernelBytes: String = "kernel") throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("repo"), withIntermediateDirectories: true)
        try kernelBytes.write(to: dir.appendingPathComponent("vmlinuz"), atomically: true, encoding: .utf8)
        try "disk".write(to: dir.appendingPathComponent("disk.qcow2"), atomically: true, encoding: .utf8)
        try "root=LABEL=x\n".write(to: dir.appendingPathComponent("cmdline"), atomically: true, encoding: .utf8)
        try "Packages".write(to: dir.appendingPathComponent("repo/Packages"), atomically: true, encoding: .utf8)
        try """
        {"generations": [
          {"name": "a", "version": "1", "boot": "direct", "kernel": "vmlinuz", "cmdline": "cmdline", "disk": "disk.qcow2"},
          {"name": "a-fw", "version": "1", "boot": "firmware", "disk": "disk.qcow2", "parent": "a"}],
         "payloads": {"repo": "repo"}}
        """.write(to: dir.appendingPathComponent("image.json"), atomically: true, encoding: .utf8)
        return dir
    }

    @Test func sealingGivesDigestsThatFollowTheBytes() throws {
        let one = try fakeBuild(), two = try fakeBuild(), other = try fakeBuild(kernelBytes: "kernel 2")
        defer { for d in [one, two, other] { try? FileManager.default.removeItem(at: d) } }
        for d in [one, two, other] { try GenerationStore.seal(directory: d, final: d, recipe: "r", recipeDigest: "x") }
        let a = try GenerationStore.load(directory: one), b = try GenerationStore.load(directory: two)
        let c = try GenerationStore.load(directory: other)
        #expect(a.generations.map(\.name) == ["a", "a-fw"])
        #expect(a.generations.map(\.digest) == b.generations.map(\.digest), "same bytes, same digests")
        #expect(a.generations[0].digest != c.generations[0].digest, "another kernel, another generation")
        #expect(a.generations[1].digest != c.generations[1].digest, "a parent's change changes its children")
        #expect(a.generations[0].cmdline == "root=LABEL=x")
        #expect(a.generations[1].boot == .firmware && a.generations[1].kernel == nil && a.generations[1].parent == "a")
        #expect(a.generations[0].kernel == one.appendingPathComponent("vmlinuz").path)
        #expect(a.payloads["repo"] == one.appendingPathComponent("repo"))
        // Sealed files are read-only.
        let mode = try FileManager.default.attributesOfItem(atPath: one.appendingPathComponent("repo/Packages").path)[.posixPermissions] as? Int
        #expect(mode == 0o444)
    }

    /// `generations --verify` and the check after the whole suite: a built file written since its seal is found.
    @Test func verifyFindsABuiltFileThatWasWritten() throws {
        let dir = try fakeBuild()
        defer { try? FileManager.default.removeItem(at: dir) }
        try GenerationStore.seal(directory: dir, final: dir, recipe: "r", recipeDigest: "x")
        let built = try GenerationStore.load(directory: dir).generations
        #expect(GenerationStore.verify(built) == [nil, nil], "sealed and untouched: intact (the child's parent digest too)")
        let kernel = dir.appendingPathComponent("vmlinuz").path
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: kernel)
        try "kernel, written".write(toFile: kernel, atomically: false, encoding: .utf8)
        #expect(GenerationStore.verify([built[0]])[0]?.contains("no longer give its digest") == true)
    }

    @Test func aManifestWithoutWhatABootNeedsIsRefused() throws {
        let dir = try fakeBuild()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("image.json"))
        try #"{"generations": [{"name": "a", "boot": "direct"}]}"#.write(to: dir.appendingPathComponent("image.json"), atomically: true, encoding: .utf8)
        let e = #expect(throws: RehearsalError.self) { try GenerationStore.seal(directory: dir, final: dir, recipe: "r", recipeDigest: "x") }
        #expect(e?.code == .imageBuild && e?.exitStatus == 3)
    }

    @Test func firmwareBootHasNoKernelAndAPayloadIsReadOnly() {
        var x = DomainXML(name: "m", accelerator: .tcg, memoryMiB: 512, cpus: 1, kernel: nil, initrd: nil, cmdline: nil,
                          runID: "r", scenario: "s")
        x.disk = "/run/disk-overlay.qcow2"
        x.readOnlyDisks = [ReadOnlyDisk(file: "/run/payload.img", serial: "rehearse-payload"), ReadOnlyDisk(file: "/run/cidata.iso", serial: "cidata")]
        let xml = x.render()
        #expect(xml.contains("<boot dev='hd'/>") && !xml.contains("<kernel>") && !xml.contains("<cmdline>"))
        #expect(xml.contains("<source file='/run/payload.img'/><target dev='vdb' bus='virtio'/><readonly/><serial>rehearse-payload</serial>"))
        #expect(xml.contains("<source file='/run/cidata.iso'/><target dev='vdc' bus='virtio'/><readonly/><serial>cidata</serial>"))
        #expect(xml.contains("<source file='/run/disk-overlay.qcow2'/><target dev='vda'"))
        #expect(!xml.contains("<filesystem"))
    }

    @Test func aNixOSSystemSharesItsStoreReadOnlyAndGetsARootDisk() {
        var x = DomainXML(name: "m", accelerator: .tcg, memoryMiB: 512, cpus: 1, kernel: "/s/k", initrd: "/s/i", cmdline: "init=/nix/store/x/init",
                          runID: "r", scenario: "s")
        x.disk = "/run/root.qcow2"
        x.diskSerial = "root"
        x.share = ("/srv/nix/store", NixOSSystem.storeTag)
        let xml = x.render()
        #expect(xml.contains("<filesystem type='mount' accessmode='squash'><source dir='/srv/nix/store'/><target dir='nix-store'/><readonly/></filesystem>"))
        #expect(xml.contains("<target dev='vda' bus='virtio'/><serial>root</serial></disk>"))
    }

    @Test func onlyBuildsTheCurrentRecipeWouldNotMakeAreStale() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("stale-\(UUID().uuidString)")
        defer { try? fm.removeItem(at: root) }
        let recipes = root.appendingPathComponent("Images"), state = StateDirectory(root: root.appendingPathComponent("state"))
        try fm.createDirectory(at: recipes.appendingPathComponent("r"), withIntermediateDirectories: true)
        try "#!/bin/sh\n[ \"$1\" = inputs ] && echo none\n".write(to: recipes.appendingPathComponent("r/build.sh"), atomically: true, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: recipes.appendingPathComponent("r/build.sh").path)
        let recipe = ImageRecipe(name: "r", directory: recipes.appendingPathComponent("r"))
        let current = recipe.cacheDirectory(in: state, digest: try recipe.digest(state: state))
        let old = state.images.appendingPathComponent("r-0123456789abcdef")
        let otherRecipe = state.images.appendingPathComponent("gone-0123456789abcdef")
        let notABuild = state.images.appendingPathComponent("r-notes")
        for d in [current, old, otherRecipe, notABuild] { try fm.createDirectory(at: d, withIntermediateDirectories: true) }
        #expect(ImageRecipe.staleBuilds(state: state, searchPaths: [recipes]).map(\.path) == [old.path])
        // While the recipe builds, nothing of it is touched.
        let lock = try FileLock.acquire(path: state.images.appendingPathComponent("r.lock").path)
        #expect(ImageRecipe.staleBuilds(state: state, searchPaths: [recipes]).isEmpty)
        lock.unlock()
    }
}
