import Foundation

/// Paths to the shared reference material, which sits beside the package root (`../shared`).
public enum Fixtures {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `../shared`, resolved. Tests call `requireShared()` first so a missing folder fails with a clear message.
    public static let shared: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared").standardizedFileURL

    public static var sharedAvailable: Bool {
        FileManager.default.fileExists(atPath: shared.appendingPathComponent("fixtures/MANIFEST.md").path)
    }

    public struct MissingShared: Error, CustomStringConvertible {
        public var description: String {
            "The shared reference folder is missing: expected \(Fixtures.shared.path) (../shared beside the package root)."
        }
    }

    /// Throws a clear error if `../shared` is missing.
    public static func requireShared() throws {
        if !sharedAvailable { throw MissingShared() }
    }

    public static func path(_ relative: String) -> String {
        shared.appendingPathComponent(relative).path
    }

    public static func fixture(_ relative: String) -> String { path("fixtures/" + relative) }

    /// A fresh temporary folder, removed by the caller.
    public static func temporaryFolder(_ label: String = "crucible-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Where the real SmolLM2 GGUF is cached (outside the repo): `$CRUCIBLE_SMOLLM2_GGUF` or
    /// `~/.cache/crucible/SmolLM2-135M-Instruct.Q4_1.gguf`. Nil if absent.
    public static var smolLM2GGUF: String? {
        let env = ProcessInfo.processInfo.environment["CRUCIBLE_SMOLLM2_GGUF"]
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        let candidates = [env, home + "/.cache/crucible/SmolLM2-135M-Instruct.Q4_1.gguf"].compactMap { $0 }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }
}
