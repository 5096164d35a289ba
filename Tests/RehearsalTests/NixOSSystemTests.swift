import Foundation
import Testing
@testable import Rehearsal

/// How a NixOS closure is read: the toplevel's four entries, links into
/// `/nix/store` followed inside the store that holds the toplevel, the
/// `result` links that `nixos-rebuild build` and `build-vm` leave, and the
/// errors for what is not a NixOS system. (Booting one: CandidateFormTests.)
@Suite struct NixOSSystemTests {
    /// A store at DIR/nix/store with a kernel, an initrd and a toplevel
    /// linking to them the way Nix does (absolute /nix/store/… links).
    func store(params: String = "loglevel=4 quiet", drop: String? = nil) throws -> (root: URL, top: URL) {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("nix-\(UUID().uuidString)")
        let store = root.appendingPathComponent("nix/store")
        for d in ["aaaa-linux-6.1", "bbbb-initrd", "cccc-nixos-system-host-24.11.1234"] {
            try fm.createDirectory(at: store.appendingPathComponent(d), withIntermediateDirectories: true)
        }
        try Data("kernel".utf8).write(to: store.appendingPathComponent("aaaa-linux-6.1/bzImage"))
        try Data("initrd".utf8).write(to: store.appendingPathComponent("bbbb-initrd/initrd"))
        let top = store.appendingPathComponent("cccc-nixos-system-host-24.11.1234")
        let entries: [(String, () throws -> Void)] = [
            ("kernel", { try fm.createSymbolicLink(atPath: top.appendingPathComponent("kernel").path, withDestinationPath: "/nix/store/aaaa-linux-6.1/bzImage") }),
            ("initrd", { try fm.createSymbolicLink(atPath: top.appendingPathComponent("initrd").path, withDestinationPath: "/nix/store/bbbb-initrd/initrd") }),
            ("kernel-params", { try Data((params + "\n").utf8).write(to: top.appendingPathComponent("kernel-params")) }),
            ("init", { try Data("#!/bin/sh\n".utf8).write(to: top.appendingPathComponent("init")) }),
            ("nixos-version", { try Data("24.11.1234\n".utf8).write(to: top.appendingPathComponent("nixos-version")) }),
        ]
        for (name, make) in entries where name != drop { try make() }
        return (root, top)
    }

    @Test func aToplevelIsReadThroughItsStore() throws {
        let (root, top) = try store()
        defer { try? FileManager.default.removeItem(at: root) }
        let s = try NixOSSystem(path: top.path)
        let storePath = root.appendingPathComponent("nix/store").path
        #expect(s.store == storePath)
        #expect(s.kernel == "\(storePath)/aaaa-linux-6.1/bzImage" && s.initrd == "\(storePath)/bbbb-initrd/initrd")
        #expect(s.name == "nixos-system-host-24.11.1234" && s.version == "24.11.1234")
        #expect(s.cmdline == "loglevel=4 quiet init=/nix/store/cccc-nixos-system-host-24.11.1234/init console=ttyS0,115200")
        let g = try s.generation()
        #expect(g.boot == .direct && g.nixStore == storePath && g.freshRootLabel == "nixos" && g.disk == nil)
        #expect(g.version == "NixOS 24.11.1234" && g.digest.count == 64)
        // Another closure (another toplevel path) is another generation.
        let (root2, top2) = try store(params: "loglevel=7")
        defer { try? FileManager.default.removeItem(at: root2) }
        #expect(try NixOSSystem(path: top2.path).generation().digest != g.digest)
    }

    @Test func resultLinksOfBuildAndBuildVMLeadToTheToplevel() throws {
        let (root, top) = try store()
        defer { try? FileManager.default.removeItem(at: root) }
        let fm = FileManager.default
        // nixos-rebuild build: result -> the toplevel.
        let result = root.appendingPathComponent("result")
        try fm.createSymbolicLink(atPath: result.path, withDestinationPath: top.path)
        #expect(try NixOSSystem(path: result.path).toplevelName == top.lastPathComponent)
        #expect(SystemFiles.detect(result.path) == .nixosSystem(result.path))
        // nixos-rebuild build-vm: result -> a VM package whose `system` links to the toplevel.
        let vm = root.appendingPathComponent("nix/store/dddd-nixos-vm")
        try fm.createDirectory(at: vm.appendingPathComponent("bin"), withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: vm.appendingPathComponent("system").path, withDestinationPath: "/nix/store/\(top.lastPathComponent)")
        let vmResult = root.appendingPathComponent("result-vm")
        try fm.createSymbolicLink(atPath: vmResult.path, withDestinationPath: vm.path)
        #expect(NixOSSystem.looksLikeToplevel(vmResult.path))
        #expect(try NixOSSystem(path: vmResult.path).toplevelName == top.lastPathComponent)
    }

    @Test func whatIsNotANixOSSystemIsSaidPlainly() throws {
        let (root, top) = try store(drop: "init")
        defer { try? FileManager.default.removeItem(at: root) }
        #expect(!NixOSSystem.looksLikeToplevel(top.path))
        #expect(SystemFiles.detect(top.path) == nil, "a directory that is not a toplevel is no candidate")
        let scenario = root.appendingPathComponent("s.yaml")
        try "machine:\n  nixos: \(top.path)\nsteps: []\n".write(to: scenario, atomically: true, encoding: .utf8)
        do {
            _ = try Runner.prepare(files: [scenario.path])
            Issue.record("prepared")
        } catch let e as RehearsalError {
            #expect(e.line == 2 && e.message.contains("not a NixOS system"), "\(e)")
        }
        // A toplevel outside any …/nix/store.
        let (root2, top2) = try store()
        defer { try? FileManager.default.removeItem(at: root2) }
        let loose = root2.appendingPathComponent("loose")
        try FileManager.default.copyItem(at: top2, to: loose)
        #expect(throws: RehearsalError.self) { try NixOSSystem(path: loose.path) }
        // Both a disk and a NixOS system.
        try "x".write(to: root2.appendingPathComponent("d.qcow2"), atomically: true, encoding: .utf8)
        try "machine: {disk: d.qcow2, nixos: \(top2.path)}\nsteps: []\n".write(to: root2.appendingPathComponent("s.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: RehearsalError.self) { try ScenarioParser.parse(file: root2.appendingPathComponent("s.yaml").path) }
    }
}
