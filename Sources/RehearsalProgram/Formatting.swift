import Foundation

/// Sizes and times as `rehearse` prints them in its tables.
public enum Formatting {
    /// `512 MiB`, `1.5 GiB`.
    public static func size(_ bytes: Int64) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30))
            : String(format: "%.0f MiB", Double(bytes) / Double(1 << 20))
    }

    /// `2026-12-03 21:24Z` (UTC, to the minute).
    public static func date(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d) + "Z"
    }
}
