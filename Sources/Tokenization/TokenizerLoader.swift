import ArchitectureDefinitions
import Checkpoints
import Foundation
import Host

/// Opens the tokenizer of a model.
public enum TokenizerLoader {
    /// Loads the tokenizer at `path`: a model folder (`tokenizer.json`, plus `tokenizer_config.json` if
    /// present), a `tokenizer.json` file, or a `.gguf` file (its `tokenizer.ggml.*` metadata).
    /// - Throws: `TokenizerError` naming the file for missing files and unsupported or malformed
    ///   tokenizers; `CheckpointError` for a GGUF file that cannot be read.
    public static func load(path: String) throws -> Tokenizer {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw TokenizerError.fileNotFound(path: path)
        }
        if isFolder.boolValue {
            let json = (path as NSString).appendingPathComponent("tokenizer.json")
            guard FileManager.default.fileExists(atPath: json) else { throw TokenizerError.fileNotFound(path: json) }
            return try loadTokenizerJSON(path: json)
        }
        if path.lowercased().hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            return try load(ggufMetadata: file.metadata, file: path)
        }
        if path.lowercased().hasSuffix(".json") {
            return try loadTokenizerJSON(path: path)
        }
        throw TokenizerError.unsupported(kind: "tokenizer file", value: (path as NSString).lastPathComponent, file: path)
    }

    /// The tokenizer transformers 5's `AutoTokenizer` builds for the model at `path`. It mostly follows
    /// `tokenizer.json`, but for some model types it uses its own class, which rebuilds the pipeline: a folder whose
    /// `tokenizer_config.json` names `Qwen2Tokenizer`, or whose architecture definition says transformers uses that class
    /// for its `model_type` (Qwen2, a type transformers knows to declare the wrong class on the Hub), is tokenized with
    /// Qwen2's split pattern and NFC whatever its `tokenizer.json` says. mergekit-moe tokenizes gate prompts this way;
    /// a GGUF file is loaded as usual.
    public static func loadAsTransformers(path: String, modelType: String?) throws -> Tokenizer {
        var isFolder: ObjCBool = false
        let json = (path as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue,
              FileManager.default.fileExists(atPath: json) else { return try load(path: path) }
        let configPath = (path as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: configPath) ? try parseJSON(configPath) : nil
        let declared = (config?["tokenizer_class"]?.stringValue ?? "").replacingOccurrences(of: "Fast", with: "")
        let forced = modelType.flatMap { ArchitectureDefinition.forModelType($0)?.transformersTokenizer }
        let qwen2 = (forced ?? declared) == "Qwen2Tokenizer"
        return try TokenizerJSONLoader.load(try parseJSON(json), config: config, file: json, qwen2Pipeline: qwen2)
    }

    /// Builds a tokenizer from GGUF metadata (the `tokenizer.ggml.*` keys); `file` is used in messages.
    public static func load(ggufMetadata metadata: [String: GGUFValue], file: String) throws -> Tokenizer {
        try GGUFVocabularyLoader.load(metadata: metadata, file: file)
    }

    /// Loads a Hugging Face `tokenizer.json`, reading `tokenizer_config.json` beside it when present.
    static func loadTokenizerJSON(path: String) throws -> Tokenizer {
        let root = try parseJSON(path)
        // (URL, not NSString.deletingLastPathComponent, which traps on one-character paths.)
        let configPath = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json").path
        let config = FileManager.default.fileExists(atPath: configPath) ? try parseJSON(configPath) : nil
        return try TokenizerJSONLoader.load(root, config: config, file: path)
    }

    private static func parseJSON(_ path: String) throws -> JSONValue {
        let data: Data
        do { data = try RegularFile.read(path) } catch let e as RegularFile.Failure {
            if e.notFound { throw TokenizerError.fileNotFound(path: path) }
            throw TokenizerError.malformed(file: path, reason: e.reason)
        }
        do {
            return try JSONValue.parse(data)
        } catch let e as JSONParseError {
            throw TokenizerError.malformed(file: path, reason: e.description)
        }
    }
}
