import Checkpoints
import Foundation

/// A byte-level BPE tokenizer for checkpoints `crucible synth` makes: `<pad>` 0, `<s>` 1 (BOS, added in front),
/// `</s>` 2, the 256 byte symbols, then unused placeholders up to the vocabulary size. It has no merges, so text
/// tokenizes to one token per byte: enough to run prompts and perplexity through synthetic models. Written through
/// the same Hugging Face export as GGUF vocabularies, so transformers loads it.
public enum SyntheticTokenizer {
    /// Writes `tokenizer.json` and `tokenizer_config.json` for a vocabulary of `vocabularySize` (at least 259).
    public static func write(vocabularySize: Int, into folder: String) throws {
        guard vocabularySize >= 259 else {
            throw CheckpointError.invalidConfig(file: folder,
                reason: "a byte-level tokenizer needs a vocabulary of at least 259 tokens, the model has \(vocabularySize)")
        }
        var tokens = ["<pad>", "<s>", "</s>"]
        tokens += (0..<256).map { String(Unicode.Scalar(ByteLevelMapping.scalarForByte[$0])!) }
        tokens += (tokens.count..<vocabularySize).map { "<unused_\($0)>" }
        var types = [Int](repeating: 1, count: vocabularySize)
        for i in 0..<3 { types[i] = 3 }
        for i in 259..<vocabularySize { types[i] = 5 }
        let metadata: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"),
            "tokenizer.ggml.pre": .string("gpt-2"),
            "tokenizer.ggml.tokens": .array(tokens.map { .string($0) }),
            "tokenizer.ggml.token_type": .array(types.map { .int32(Int32($0)) }),
            "tokenizer.ggml.merges": .array([]),
            "tokenizer.ggml.bos_token_id": .uint32(1),
            "tokenizer.ggml.eos_token_id": .uint32(2),
            "tokenizer.ggml.padding_token_id": .uint32(0),
            "tokenizer.ggml.add_bos_token": .bool(true),
        ]
        for (name, text) in try GGUFTokenizerExport.files(metadata: metadata, file: folder) where name != "generation_config.json" {
            let path = (folder as NSString).appendingPathComponent(name)
            do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
                throw CheckpointError.writeFailed(path: path, reason: error.localizedDescription)
            }
        }
    }
}
