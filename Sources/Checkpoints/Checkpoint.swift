import Foundation

/// A model checkpoint opened from a path, whatever its format: a Hugging Face folder (config.json plus
/// safetensors), a `.gguf` file, or a folder holding exactly one `.gguf` and no safetensors.
/// Either way `source` serves Hugging Face names and shapes and `config` is a `config.json` equivalent.
public struct Checkpoint: Sendable {
    public let path: String
    public let source: any TensorSource
    public let config: JSONObject
    /// The file `config` came from (`config.json`, or the `.gguf` whose metadata it was derived from).
    public let configPath: String
    public let isGGUF: Bool

    public init(path: String, source: any TensorSource, config: JSONObject, configPath: String, isGGUF: Bool) {
        self.path = path
        self.source = source
        self.config = config
        self.configPath = configPath
        self.isGGUF = isGGUF
    }

    /// Opens `path`; throws `CheckpointError` naming the path when it is neither form.
    public static func open(_ path: String) throws -> Checkpoint {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError.fileNotFound(path: path)
        }
        if !isDir.boolValue {
            guard path.lowercased().hasSuffix(".gguf") else {
                throw CheckpointError.notAFolder(path: path)
            }
            return try openGGUF(path)
        }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw CheckpointError.unreadable(path: path, reason: "cannot list the folder (\(error.localizedDescription))")
        }
        let ggufs = entries.filter { $0.lowercased().hasSuffix(".gguf") }.sorted()
        let hasSafetensors = entries.contains { $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json" }
        if !hasSafetensors, !ggufs.isEmpty {
            guard ggufs.count == 1 else {
                throw CheckpointError.invalidConfig(file: path,
                    reason: "the folder holds \(ggufs.count) .gguf files (\(ggufs.joined(separator: ", "))) and no safetensors; pass the "
                        + "path of one of them")
            }
            return try openGGUF((path as NSString).appendingPathComponent(ggufs[0]))
        }
        let folder = try CheckpointFolder(path: path)
        return Checkpoint(path: path, source: folder, config: folder.config, configPath: folder.configPath, isGGUF: false)
    }

    private static func openGGUF(_ path: String) throws -> Checkpoint {
        let file = try GGUFFile(path: path)
        return Checkpoint(path: path, source: file, config: try file.hfConfig(), configPath: path, isGGUF: true)
    }
}
