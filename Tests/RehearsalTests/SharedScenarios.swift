import Foundation

/// Scenario text that several unit tests prepare (recipes are resolved,
/// never built: no VM).
enum SharedScenarios {
    /// Two machines booting the debian recipe, with one step on the server.
    static let debianPair = """
        machines:
          server: {generation: debian}
          client: {generation: debian}
        steps:
          - succeed: "true"
            on: server
        """

    /// Recipes are found in the repository's `Images/`, whatever the working directory.
    static func useRepositoryImages() {
        setenv("REHEARSE_IMAGES", URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Images").standardized.path, 1)
    }
}
