import Foundation

/// A point on the monotonic clock by which something must happen.
public struct Deadline: Sendable, Comparable {
    public let uptimeNanoseconds: UInt64

    public static func after(seconds: Double) -> Deadline {
        Deadline(uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds + UInt64(max(0, seconds) * 1e9))
    }
    public static var now: Deadline { Deadline(uptimeNanoseconds: DispatchTime.now().uptimeNanoseconds) }

    public var remaining: Double {
        let now = DispatchTime.now().uptimeNanoseconds
        return uptimeNanoseconds > now ? Double(uptimeNanoseconds - now) / 1e9 : 0
    }
    public var hasPassed: Bool { remaining <= 0 }

    /// The wall-clock date of this deadline, for `NSCondition.wait(until:)`.
    public var date: Date { Date(timeIntervalSinceNow: min(remaining, 1e7)) }

    public static func < (a: Deadline, b: Deadline) -> Bool { a.uptimeNanoseconds < b.uptimeNanoseconds }
    public func earlier(_ other: Deadline) -> Deadline { Swift.min(self, other) }
    /// The same deadline moved `seconds` later (time spent waiting for a boot slot is not the guest's).
    public func later(by seconds: Double) -> Deadline { Deadline(uptimeNanoseconds: uptimeNanoseconds + UInt64(max(0, seconds) * 1e9)) }
}

/// Seconds elapsed since `start`, on the monotonic clock.
public struct Stopwatch: Sendable {
    public let start = DispatchTime.now().uptimeNanoseconds
    public init() {}
    public var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
}
