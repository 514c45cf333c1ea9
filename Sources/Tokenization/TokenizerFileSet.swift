import Checkpoints
import Foundation
import Host

/// The tokenizer and generation files that travel with a model, and how they are carried into a new folder:
/// copied from a Hugging Face folder, or exported from a GGUF file's vocabulary (`GGUFTokenizerExport`).
public enum TokenizerFileSet {
    /// Files copied as they are when present (the set transformers and mergekit carry along).
    public static let names = [
        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer.model", "added_tokens.json",
        "merges.txt", "vocab.json", "chat_template.jinja", "chat_template.json", "generation_config.json",
    ]

    /// The files `source` (at `path`) gives a new folder: name → source file path, or name → exported text.
    public enum Content {
        case copy(from: String)
        case text(String)
    }

    /// What would be written for the model at `path`. A GGUF vocabulary the export cannot convert throws its
    /// `GGUFTokenizerExportError`.
    public static func contents(of source: any TensorSource, path: String) throws -> [(name: String, content: Content)] {
        if let gguf = source as? GGUFFile {
            return try GGUFTokenizerExport.files(from: gguf).sorted { $0.key < $1.key }.map { ($0.key, .text($0.value)) }
        }
        return names.compactMap { name in
            let file = (path as NSString).appendingPathComponent(name)
            return FileManager.default.fileExists(atPath: file) ? (name, .copy(from: file)) : nil
        }
    }

    /// Writes the files of `contents(of:path:)` into `folder`, replacing files of the same names. Returns their names.
    @discardableResult
    public static func write(from source: any TensorSource, path: String, into folder: String) throws -> [String] {
        let fm = FileManager.default
        let items = try contents(of: source, path: path)
        for (name, content) in items {
            let dest = (folder as NSString).appendingPathComponent(name)
            do {
                try? fm.removeItem(atPath: dest)
                switch content {
                // Read through RegularFile: a FIFO or device posing as a tokenizer file is refused, not waited on.
                case let .copy(from): try RegularFile.read(from).write(to: URL(fileURLWithPath: dest))
                case let .text(text): try text.write(toFile: dest, atomically: false, encoding: .utf8)
                }
            } catch {
                throw CheckpointError.writeFailed(path: dest, reason: "\(name) from \(path): \(error.localizedDescription)")
            }
        }
        return items.map(\.name)
    }
}
