import Foundation
import XCTest

/// Where tests find their reference material.
///
/// - The golden fixtures (tiny checkpoints, forward goldens, mergekit outputs, `archs/`, `vocab-lora/`, `moe/`) are
///   copied into the repository under `Tests/Fixtures/` and are always present: `Fixtures.fixture("models/llama-base")`.
/// - Larger material stays outside the repository in the shared reference folder beside the package root
///   (`../shared`): llama.cpp's vocabulary files (`tokenizer-vectors/`) and WikiText-2 (`data/`). A test that reads
///   it gets the path from `requireSharedFile(_:)`, which skips the test, naming the path, when the file is absent.
/// - The real SmolLM2 GGUF is cached outside the repository: `requireSmolLM2GGUF()` skips when it is absent.
public enum Fixtures {
    /// The package root (two levels above this file's folder).
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `Tests/Fixtures`: the in-repository copy of the golden fixtures (see its README.md).
    public static let fixturesRoot: URL = packageRoot.appendingPathComponent("Tests/Fixtures").standardizedFileURL

    /// `../shared`, resolved: the reference material that is not copied into the repository.
    public static let shared: URL = packageRoot.deletingLastPathComponent().appendingPathComponent("shared").standardizedFileURL

    /// Whether the `../shared` folder exists at all. Tests check the file they need with `requireSharedFile(_:)`.
    public static var sharedAvailable: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: shared.path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The path of `relative` inside `../shared` (e.g. `tokenizer-vectors/ggml-vocab-qwen2.gguf`), after checking the
    /// file is there; skips the calling test, naming what is missing and where it was looked for, when it is not.
    public static func requireSharedFile(_ relative: String) throws -> String {
        let file = path(relative)
        if FileManager.default.fileExists(atPath: file) { return file }
        let folder = sharedAvailable ? "" : " (the shared reference folder \(shared.path) is absent)"
        throw XCTSkip("needs \(relative) from the shared reference folder: \(file) does not exist\(folder)")
    }

    /// A path inside `../shared`. `fixtures/…` is the exception: the fixtures are read from `Tests/Fixtures/`.
    public static func path(_ relative: String) -> String {
        if relative == "fixtures" || relative.hasPrefix("fixtures/") {
            return fixture(String(relative.dropFirst("fixtures".count).drop { $0 == "/" }))
        }
        return shared.appendingPathComponent(relative).path
    }

    /// A path inside `Tests/Fixtures/` (`""` gives the folder itself, the working directory of the fixture recipes).
    public static func fixture(_ relative: String) -> String {
        relative.isEmpty ? fixturesRoot.path : fixturesRoot.appendingPathComponent(relative).path
    }

    /// WikiText-2's test split in `../shared`, as `llama-perplexity` reads it.
    public static let wikiTextTest = "data/wikitext-2-raw/wiki.test.raw"

    /// A fresh temporary folder, removed by the caller.
    public static func temporaryFolder(_ label: String = "crucible-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// The places the real SmolLM2 GGUF is looked for, in order: `$CRUCIBLE_SMOLLM2_GGUF` when set, then
    /// `~/.cache/crucible/SmolLM2-135M-Instruct.Q4_1.gguf`.
    public static var smolLM2Candidates: [String] {
        let env = ProcessInfo.processInfo.environment["CRUCIBLE_SMOLLM2_GGUF"]
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        return [env, home + "/.cache/crucible/SmolLM2-135M-Instruct.Q4_1.gguf"].compactMap { $0 }
    }

    /// Where the real SmolLM2 GGUF is cached (outside the repo): the first of `smolLM2Candidates` that exists. Nil if absent.
    public static var smolLM2GGUF: String? {
        smolLM2Candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    /// The real SmolLM2 GGUF's path; skips the calling test, naming where it looked, when it is not cached.
    public static func requireSmolLM2GGUF() throws -> String {
        if let path = smolLM2GGUF { return path }
        throw XCTSkip("SmolLM2-135M-Instruct.Q4_1.gguf is not cached: looked for \(smolLM2Candidates.joined(separator: ", ")) "
            + "(scripts/fetch-smollm2.sh fetches it; CRUCIBLE_SMOLLM2_GGUF names another copy)")
    }
}
