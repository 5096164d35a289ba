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

    /// Puts the shell on the console into protocol mode: no echo, no output
    /// post-processing (so `\n` stays `\n` and binary output arrives intact),
    /// only ^C kept as a signal key, and a non-interactive shell (no prompts,
    /// no line editing) that survives ^C while its command does not.
    public static let enterProtocolMode =
        "stty raw -echo isig quit undef susp undef 2>/dev/null; exec sh 2>/dev/null\n"

    /// Defines `__rh` and picks a writable place for the stderr spool.
    public static let definitions = """
    trap ':' INT
    for __rhd in /run /dev/shm /tmp /; do : >"$__rhd/.rehearse-stderr" 2>/dev/null && break; done
    __rhe=$__rhd/.rehearse-stderr
    __rh() { __rhm=$(($1+$2)); printf '\\001%sB\\n' "$__rhm"; ( eval "$3" ) </dev/null 2>"$__rhe"; __rhs=$?; if [ -s "$__rhe" ]; then printf '\\001%se\\n' "$__rhm"; cat "$__rhe"; fi; printf '\\001%sE%s\\n' "$__rhm" "$__rhs"; }

    """

    /// A readiness probe: prints `\x01 M R` once a shell is reading input.
    public static func probe(_ a: Int, _ b: Int) -> String {
        "printf '\\001%sR\\n' $((\(a)+\(b)))\n"
    }

    /// The line that ends the bootstrap: prints `\x01 M S`.
    public static func sync(_ a: Int, _ b: Int) -> String {
        "printf '\\001%sS\\n' $((\(a)+\(b)))\n"
    }

    /// The text that runs `command` as frame `a + b`.
    public static func invocation(_ command: String, _ a: Int, _ b: Int) throws -> String {
        if let bad = command.unicodeScalars.first(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\t" }) {
            throw ProtocolError.controlCharacter(bad.value)
        }
        return "__rh \(a) \(b) \(shellQuote(command))\n"
    }

    /// Single-quotes `s` for a POSIX shell.
    public static func shellQuote(_ s: String) -> String {
        "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Finds the one-line marker `\x01 M <kind>` (a probe or sync answer) in
    /// `bytes`; returns the index just past its line, and whether the tty
    /// still turns `\n` into `\r\n`.
    public static func findLine(marker: Int, kind: Character, in bytes: [UInt8]) -> (end: Int, crlf: Bool)? {
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

public enum ProtocolError: Error, Equatable, CustomStringConvertible {
    case controlCharacter(UInt32)
    case malformedStatus(String)

    public var description: String {
        switch self {
        case .controlCharacter(let v):
            return "command contains control character 0x\(String(v, radix: 16)); only tab and newline may appear in a command"
        case .malformedStatus(let s):
            return "malformed exit status \(s.debugDescription) in the guest's answer"
        }
    }
}
