import Foundation
import Testing
@testable import Rehearsal

@Suite struct SupportTests {
    @Test(arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"),
    ])
    func sha256KnownVectors(input: String, hex: String) {
        #expect(SHA256.hex(Data(input.utf8)) == hex)
    }

    @Test func acceleratorNeverPicksParavirtualKVM() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rh-sys-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let dev = dir.appendingPathComponent("kvm")
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("module/kvm_pvm"), withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dev.path, contents: nil)
        #expect(Accelerator.detect(sysModule: dir.appendingPathComponent("module").path, kvmDevice: dev.path).0 == .tcg)
        try FileManager.default.removeItem(at: dir.appendingPathComponent("module/kvm_pvm"))
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("module/kvm_intel"), withIntermediateDirectories: true)
        #expect(Accelerator.detect(sysModule: dir.appendingPathComponent("module").path, kvmDevice: dev.path).0 == .kvm)
        #expect(Accelerator.detect(sysModule: dir.appendingPathComponent("module").path, kvmDevice: dir.appendingPathComponent("nokvm").path).0 == .tcg)
    }

    @Test func fileLockIsExclusiveAcrossHolders() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("rh-lock-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let a = try FileLock(path: path, wait: false)
        #expect(a != nil)
        #expect(FileLock.isHeld(path: path))
        a?.unlock()
        #expect(!FileLock.isHeld(path: path))
    }

    @Test func domainXMLIsTaggedAndEscaped() {
        let x = DomainXML(name: "rehearse-1", accelerator: .tcg, memoryMiB: 256, cpus: 1, kernel: "/k", initrd: nil,
                          cmdline: "console=ttyS0 a='b'&c", runID: "r1", scenario: "a<b").render()
        #expect(x.contains("<domain type='qemu'>"))
        #expect(x.contains("xmlns:rh='\(DomainXML.namespace)'"))
        #expect(x.contains("a=&#39;b&#39;&amp;c"))
        #expect(x.contains("scenario='a&lt;b'"))
        #expect(!x.contains("<initrd>"))
    }
}
