import Foundation

/// What a command line names to boot: a generation (by name, through the
/// recipe that builds it) or a system given as files (a disk image, a NixOS
/// closure). `rehearse compare OLD NEW` takes either on each side.
public enum Candidate: Sendable {
    case generation(Runner.GenerationReference)
    case files(SystemFiles)

    /// Reads `text`: a path to a disk image (checked: `DiskImageCheck`) or a
    /// NixOS system, else a generation or recipe name looked for in `searchPaths`, or a capture of a host.
    public static func named(_ text: String, searchPaths: [URL]) throws -> Candidate {
        if let files = SystemFiles.detect(text) {
            // A bad disk image is refused here, before `compare` boots anything.
            if case let .diskImage(path, format) = files { try DiskImageCheck.check(path, declared: format) }
            return .files(files)
        }
        return .generation(try Runner.GenerationReference.named(text, searchPaths: searchPaths))
    }
}

extension Runner {
    /// The generation a candidate names, building its recipe when needed.
    public func generation(_ candidate: Candidate) async throws -> Generation {
        switch candidate {
        case .generation(let ref): return try await generation(ref)
        case .files(let files): return try await offload { try Generation.of(files) }
        }
    }
}
