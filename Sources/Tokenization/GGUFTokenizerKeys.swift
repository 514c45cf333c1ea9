import Foundation
import Checkpoints

/// The `tokenizer.*` metadata of a GGUF file for a Hugging Face byte-level BPE tokenizer, as llama.cpp's
/// converter writes it: `tokenizer.ggml.model` "gpt2", the pre-tokenizer name, tokens by id (ids the
/// tokenizer lacks up to `vocab_size` become unused `[PADn]` tokens), token types, merges, the special token
/// ids, add-BOS/EOS and the chat template.
///
/// The pre-tokenizer is named by what it does: the split rules Crucible recognises in `tokenizer.json`, with its
/// `ignore_merges` and `clean_up_tokenization_spaces`, pick the row of the pre-tokenizer table (`GGUFPreTokenizer`)
/// whose llama.cpp behaviour is the same, and its first name is written.
/// SentencePiece and other vocabularies are refused by name: export those from a GGUF parent.
public enum GGUFTokenizerKeys {
    /// Token type ids of llama.cpp (`llama_token_type`).
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// Keys for the tokenizer in `folder` (tokenizer.json, tokenizer_config.json), padded to `vocabSize` tokens.
    public static func keys(folder: String, vocabSize: Int?) throws -> [(String, GGUFValue)] {
        let file = (folder as NSString).appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: file) else {
            throw TokenizerError.malformed(file: folder, reason: "no tokenizer.json to write into the GGUF file")
        }
        let root = try JSONValue.parse(file: file)
        let configFile = (folder as NSString).appendingPathComponent("tokenizer_config.json")
        var config = FileManager.default.fileExists(atPath: configFile) ? try JSONValue.parse(file: configFile) : nil
        // transformers 5 keeps the template in its own file.
        let templateFile = (folder as NSString).appendingPathComponent("chat_template.jinja")
        if config?["chat_template"] == nil, let template = try? String(contentsOfFile: templateFile, encoding: .utf8) {
            var object = config?.objectValue ?? JSONObject()
            object["chat_template"] = .string(template)
            config = .object(object)
        }
        return try keys(tokenizer: root, config: config, file: file, vocabSize: vocabSize)
    }

    static func keys(tokenizer root: JSONValue, config: JSONValue?, file: String, vocabSize: Int?) throws -> [(String, GGUFValue)] {
        func unsupported(_ kind: String, _ value: String) -> TokenizerError { .unsupported(kind: kind, value: value, file: file) }
        func malformed(_ reason: String) -> TokenizerError { .malformed(file: file, reason: reason) }
        guard let model = root["model"], model["type"]?.stringValue ?? "BPE" == "BPE",
              let vocab = model["vocab"]?.objectValue else {
            throw unsupported("vocabulary for GGUF export", root["model"]?["type"]?.stringValue ?? "none")
        }
        guard let rules = try TokenizerJSONLoader.byteLevelRules(root["pre_tokenizer"].flatMap { $0.isNull ? nil : $0 },
                                                                  unsupported: unsupported),
              model["byte_fallback"]?.boolValue != true else {
            throw unsupported("vocabulary for GGUF export",
                "SentencePiece-style BPE (llama.cpp's 'llama' tokenizer needs the scores of tokenizer.model); "
                    + "export from the GGUF parent instead")
        }
        let ignoreMerges = model["ignore_merges"]?.boolValue ?? false
        let keepsSpaces = !(config?["clean_up_tokenization_spaces"]?.boolValue ?? false)
        // The row of the one pre-tokenizer table with these split rules and flags; the clean-up flag only decides
        // between rows that differ in it.
        let rows = GGUFPreTokenizer.all.filter { $0.rules == rules && $0.ignoresMerges == ignoreMerges }
        guard let row = rows.first(where: { $0.keepsSpaces == keepsSpaces }) ?? rows.first else {
            throw unsupported("pre-tokenizer for GGUF export", rules.map(\.rawValue).joined(separator: " + ")
                + (ignoreMerges ? " with ignore_merges" : ""))
        }
        let pre = row.names[0]

        var textOf: [Int: String] = [:]
        for (token, value) in vocab.pairs {
            guard let id = value.intValue, id >= 0 else { throw malformed("model.vocab[\"\(token)\"] is not a token id") }
            textOf[id] = token
        }
        var special: [Int: Bool] = [:]
        for (i, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = entry["id"]?.intValue, id >= 0, let content = entry["content"]?.stringValue else {
                throw malformed("added_tokens[\(i)] needs an integer id and a string content")
            }
            textOf[id] = content
            special[id] = entry["special"]?.boolValue ?? false
        }
        let highest = (textOf.keys.max() ?? -1) + 1
        let count = max(highest, vocabSize ?? 0)
        guard count <= max(1 << 21, 4 * textOf.count) else { throw malformed("token id \(highest - 1) is far beyond the vocabulary") }
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(count)
        types.reserveCapacity(count)
        for id in 0..<count {
            guard let text = textOf[id] else {
                tokens.append(.string("[PAD\(id)]"))
                types.append(.int32(TokenType.unused.rawValue))
                continue
            }
            tokens.append(.string(text))
            if let isSpecial = special[id] {
                types.append(.int32((isSpecial || looksSpecial(text) ? TokenType.control : .userDefined).rawValue))
            } else {
                types.append(.int32(TokenType.normal.rawValue))
            }
        }
        var merges: [GGUFValue] = []
        for (i, m) in (model["merges"]?.arrayValue ?? []).enumerated() {
            if let s = m.stringValue {
                merges.append(.string(s))
            } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                merges.append(.string(a + " " + b))
            } else {
                throw malformed("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(tokens)),
            ("tokenizer.ggml.token_type", .array(types)),
            ("tokenizer.ggml.merges", .array(merges)),
        ]
        // Special tokens named in tokenizer_config.json (a string or an AddedToken object), found by their text.
        var idOfText: [String: Int] = [:]
        for (id, text) in textOf where idOfText[text] == nil || special[id] != nil { idOfText[text] = id }
        for (configKey, ggufKey) in [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                                     ("sep_token", "seperator_token_id"), ("pad_token", "padding_token_id")] {
            guard let value = config?[configKey], let text = value.stringValue ?? value["content"]?.stringValue,
                  let id = idOfText[text] else { continue }
            out.append(("tokenizer.ggml.\(ggufKey)", .uint32(UInt32(id))))
        }
        for key in ["add_bos_token", "add_eos_token"] {
            if let flag = config?[key]?.boolValue { out.append(("tokenizer.ggml.\(key)", .bool(flag))) }
        }
        if let template = config?["chat_template"]?.stringValue {
            out.append(("tokenizer.chat_template", .string(template)))
        }
        return out
    }

    /// llama.cpp's converter marks added tokens that look like control tokens as control even when the
    /// tokenizer does not call them special.
    static func looksSpecial(_ text: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(text)
            || (text.hasPrefix("<|") && text.hasSuffix("|>"))
            || (text.hasPrefix("<｜") && text.hasSuffix("｜>"))
            || (text.hasPrefix("<unused") && text.hasSuffix(">"))
    }
}
