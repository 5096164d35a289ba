import Foundation
import Testing
@testable import Rehearsal

/// A firmware boot that finds nothing to boot says so on the serial console,
/// and that fails the run at once instead of at its deadline.
@Suite struct FirmwareConsoleTests {
    /// What SeaBIOS 1.16.2 wrote to the first serial port under QEMU 7.2
    /// (`-machine pc,graphics=off`, `-nodefaults`, one virtio disk of zeros
    /// with bootindex 1, `-boot strict=on`), byte for byte.
    static let seaBIOSWithNothingToBoot = "\u{1b}c\u{1b}[?7l\u{1b}[2J\u{1b}[0mSeaBIOS (version 1.16.2-debian-1.16.2-1)\r\n"
        + "Booting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n\r\nNo bootable device.\r\n"

    @Test func aFirmwareBootPutsSeaBIOSOnTheSerialConsole() {
        let firmware = DomainXML(name: "m", accelerator: .tcg, memoryMiB: 256, cpus: 1, kernel: nil, initrd: nil, cmdline: nil,
                                 runID: "r", scenario: "s").render()
        #expect(firmware.contains("<boot dev='hd'/>\n    <bios useserial='yes' rebootTimeout='-1'/>\n  </os>"))
        let direct = DomainXML(name: "m", accelerator: .tcg, memoryMiB: 256, cpus: 1, kernel: "/k", initrd: nil, cmdline: "c",
                               runID: "r", scenario: "s").render()
        #expect(!direct.contains("<bios"))
    }

    @Test func seaBIOSFindingNothingToBootIsTrouble() throws {
        var log = ConsoleLog(started: Stopwatch(), transcript: nil, allowed: [])
        let found = log.append(Array(Self.seaBIOSWithNothingToBoot.utf8))
        #expect(found == [ConsoleTrouble(kind: "no bootable device", line: "No bootable device.")])
        #expect(log.lines.first == "SeaBIOS (version 1.16.2-debian-1.16.2-1)")
    }

    @Test(arguments: [
        "SeaBIOS (version 1.16.2-debian-1.16.2-1)",
        "Booting from Hard Disk...",
        "Booting from ROM...",
        "GRUB loading.",
        "Welcome to GRUB!",
        "  Booting `Debian GNU/Linux'",
        "Loading Linux 6.1.0-28-amd64 ...",
        "[    1.234] virtio_blk virtio1: [vda] 4194304 512-byte logical blocks (2.15 GB/2.00 GiB)",
    ])
    func ordinaryBootLinesAreNotTrouble(line: String) {
        #expect(ConsoleTrouble.check(line, allowed: []) == nil)
    }
}
