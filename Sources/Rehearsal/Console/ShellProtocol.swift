/// The wire protocol spoken with a POSIX shell over a console: what the host
/// sends, and how it finds each command's stdout, stderr and exit status in
/// what comes back.
///
/// One command is one round trip and starts no extra process in the guest
/// beyond the subshell that isolates it (`cat` runs only when stderr is
/// non-empty). The guest-side function, defined once by `bootstrap`:
///
///     __rh A B 'command'   # prints:
///     \x01 M B \n  <stdout bytes>  [\x01 M e \n <stderr bytes>]  \x01 M E status \n
///
/// where M = A + B is computed *in the guest*, so the tty's echo of our own
/// input can never contain it, and nothing the command prints can contain it
/// unless the command computes it too. Everything outside a frame (echo,
/// prompts, stray kernel messages) is noise and is kept only for the log.
public enum ShellProtocol {
    /// Frames start with this byte: never typed, rarely printed.
    static let lead: UInt8 = 0x01

    /// One line, typed into whatever shell the console has, that puts it in
    /// protocol mode: 115200 baud (QEMU's UART holds back input for four
    /// character times before interrupting, about 4 ms at the default 9600
    /// baud and 0.35 ms at 115200), no echo, no output post-processing (`\n` stays `\n`
    /// and binary output arrives intact), only ^C kept as a signal key, and
    /// a non-interactive `sh -c` that defines `__rh`, picks a writable place
    /// for the stderr spool, and evaluates one command line at a time.
    ///
    /// Non-interactive matters: an interactive shell (ash and dash turn
    /// interactive whenever stdin and stdout are a terminal) prompts, echoes,
    /// edits lines, catches SIGINT in its subshells and abandons loops on ^C.
    /// The SIGINT trap keeps the loop alive when ^C stops a command, whose
    /// subshell gets the default action and dies, and prints `\x01 M I`: the
    /// host knows the signal was taken before it types anything more (a
    /// line typed while the signal is pending can be cut in two); a ^C that
    /// finds the loop idle in `read` (which dash and ash then end) reads
    /// again instead of ending the loop. The line stays under 1024
    /// bytes, busybox's line-editing limit, and uses no single quote inside
    /// the `sh -c` argument.
    public static let bootstrap = "stty 115200 raw -echo isig quit undef susp undef min 1 time 0 2>/dev/null; exec sh -c '"
        + [
            #"__rhi() { __rhx=1; printf "\001%sI\n" "$__rhm"; }"#,
            "trap __rhi INT",
            #"for __rhd in /run /dev/shm /tmp /; do : >"$__rhd/.rehearse-stderr" 2>/dev/null && break; done"#,
            "__rhe=$__rhd/.rehearse-stderr",
            #"__rhnl=$(printf "\nx")"#,
            "__rhnl=${__rhnl%x}",
            #"__rh() { __rhm=$(($1+$2)); printf "\001%sB\n" "$__rhm"; ( eval "$3" ) </dev/null 2>"$__rhe"; __rhs=$?; "#
                + #"if [ -s "$__rhe" ]; then printf "\001%se\n" "$__rhm"; cat "$__rhe"; fi; printf "\001%sE%s\n" "$__rhm" "$__rhs"; }"#,
            // dash and ash end `read` when a trapped signal arrives: read again then, stop only at end of input.
            #"while :; do __rhx=; IFS= read -r __rhl || { [ -n "$__rhx" ] && continue; break; }; eval "$__rhl"; done"#,
        ].joined(separator: "; ") + "'\n"

    /// A readiness probe any shell answers: prints `\x01 M R`. It has no
    /// quotes on purpose: a boot can flush a tty's input mid-line, and a
    /// fragment with one quote left the shell waiting for the closing one
    /// (prompt `> `), so that every later probe, holding two, kept it open.
    public static func probe(_ a: Int, _ b: Int) -> String {
        "printf \\\\001%sR\\\\n $((\(a)+\(b)))\n"
    }

    /// Whether `bytes` end at a shell's continuation prompt (`> ` at the
    /// start of a line, or right after another one, terminal escape
    /// sequences aside): the shell is waiting for the rest of an unfinished line.
    public static func endsAtContinuationPrompt(_ bytes: [UInt8]) -> Bool {
        var text = String(decoding: bytes.suffix(64), as: UTF8.self)
        // Bracketed-paste and other CSI sequences around the prompt.
        text = text.replacingOccurrences(of: #"\x1B\[[0-9;?]*[A-Za-z]"#, with: "", options: .regularExpression)
        // With echo off nothing separates the prompts (one per line we sent),
        // so `> > ` counts too; a needless ^C only discards a partial line.
        return text.hasSuffix("\n> ") || text.hasSuffix("\r> ") || text.hasSuffix("> > ")
    }

    /// The text that runs `command` as frame `a + b`.
    public static func invocation(_ command: String, _ a: Int, _ b: Int) throws -> String {
        if let bad = command.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            throw RehearsalError.scenario("command contains control character 0x\(String(bad.value, radix: 16)); only tab and newline may appear in a command")
        }
        // One line per command, since the loop reads lines: newlines inside
        // the command travel as "$__rhnl" between single-quoted pieces.
        let pieces = command.split(separator: "\n", omittingEmptySubsequences: false).map { shellQuote(String($0)) }
        return "__rh \(a) \(b) \(pieces.joined(separator: "\"$__rhnl\""))\n"
    }

    /// Single-quotes `s` for a POSIX shell.
    public static func shellQuote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The index just past frame `marker`'s end line (`\x01 M E status \n`) in `bytes`.
    public static func findFrameEnd(marker: Int, in bytes: [UInt8]) -> Int? {
        let needle = [lead] + Array("\(marker)E".utf8)
        guard let at = bytes.firstRange(of: needle) else { return nil }
        guard let nl = bytes[at.upperBound...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return nl + 1
    }

    /// Finds the one-line marker `\x01 M <kind>` (a probe's answer, or a frame's `E0` end) in
    /// `bytes`; returns the index just past its line, and whether the tty
    /// still turns `\n` into `\r\n`.
    public static func findLine(marker: Int, kind: String, in bytes: [UInt8]) -> (end: Int, crlf: Bool)? {
        let needle = [lead] + Array("\(marker)\(kind)".utf8)
        guard let at = bytes.firstRange(of: needle) else { return nil }
        let rest = at.upperBound
        guard rest < bytes.count else { return nil }
        if bytes[rest] == UInt8(ascii: "\n") { return (rest + 1, false) }
        if bytes[rest] == UInt8(ascii: "\r"), rest + 1 < bytes.count, bytes[rest + 1] == UInt8(ascii: "\n") {
            return (rest + 2, true)
        }
        return bytes.count - rest < 2 ? nil : (rest + 1, false)
    }
}
