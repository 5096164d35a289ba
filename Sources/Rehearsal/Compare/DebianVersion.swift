import Foundation

/// A Debian package version (`[epoch:]upstream[-revision]`), ordered the way
/// dpkg orders them (deb-version(7)): epochs numerically, then upstream and
/// revision by alternating non-digit and digit runs, where `~` sorts before
/// everything (even the end of the string), letters before other characters.
///
///     DebianVersion("1:1.0") > DebianVersion("2.0")      // the epoch wins
///     DebianVersion("1.0~rc1") < DebianVersion("1.0")    // a tilde sorts first
public struct DebianVersion: Comparable, Sendable, CustomStringConvertible {
    public let epoch: Int
    public let upstream: String
    public let revision: String
    public let description: String

    public init(_ text: String) {
        description = text
        var rest = Substring(text)
        if let colon = rest.firstIndex(of: ":"), let e = Int(rest[..<colon]) {
            epoch = e
            rest = rest[rest.index(after: colon)...]
        } else {
            epoch = 0
        }
        if let dash = rest.lastIndex(of: "-") {
            upstream = String(rest[..<dash])
            revision = String(rest[rest.index(after: dash)...])
        } else {
            upstream = String(rest)
            revision = ""
        }
    }

    public static func < (a: DebianVersion, b: DebianVersion) -> Bool { compare(a, b) < 0 }
    public static func == (a: DebianVersion, b: DebianVersion) -> Bool { compare(a, b) == 0 }

    public static func compare(_ a: DebianVersion, _ b: DebianVersion) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let u = part(a.upstream, b.upstream)
        return u != 0 ? u : part(a.revision, b.revision)
    }

    /// dpkg's verrevcmp.
    static func part(_ a: String, _ b: String) -> Int {
        let x = Array(a.utf8), y = Array(b.utf8)
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        func order(_ c: UInt8?) -> Int {
            guard let c else { return 0 }
            if isDigit(c) { return 0 }
            if (c >= 65 && c <= 90) || (c >= 97 && c <= 122) { return Int(c) }
            if c == UInt8(ascii: "~") { return -1 }
            return Int(c) + 256
        }
        while i < x.count || j < y.count {
            var firstDiff = 0
            while (i < x.count && !isDigit(x[i])) || (j < y.count && !isDigit(y[j])) {
                let ac = order(i < x.count ? x[i] : nil), bc = order(j < y.count ? y[j] : nil)
                if ac != bc { return ac - bc }
                i += 1; j += 1
            }
            while i < x.count && x[i] == 48 { i += 1 }
            while j < y.count && y[j] == 48 { j += 1 }
            while i < x.count && isDigit(x[i]) && j < y.count && isDigit(y[j]) {
                if firstDiff == 0 { firstDiff = Int(x[i]) - Int(y[j]) }
                i += 1; j += 1
            }
            if i < x.count && isDigit(x[i]) { return 1 }
            if j < y.count && isDigit(y[j]) { return -1 }
            if firstDiff != 0 { return firstDiff }
        }
        return 0
    }
}
