import Checkpoints
import Foundation

/// Why the tokenizer of a GGUF file cannot be written as Hugging Face files; names the file.
public struct GGUFTokenizerExportError: Error, CustomStringConvertible, Equatable, Sendable {
    public let file: String
    public let reason: String

    public init(file: String, reason: String) {
        self.file = file
        self.reason = reason
    }

    public var description: String { "\(file): cannot export the tokenizer to Hugging Face files: \(reason)" }
}

/// Writes the tokenizer stored in a GGUF file's `tokenizer.ggml.*` metadata as the files the Hugging Face
/// `tokenizers` / `transformers` libraries load: `tokenizer.json`, `tokenizer_config.json`,
/// `special_tokens_map.json` and `generation_config.json`.
///
/// The export reproduces what llama.cpp does with the vocabulary (the GGUF file is the reference), with
/// llama.cpp's defaults for keys a converter left out. Supported: byte-level BPE (`tokenizer.ggml.model =
/// gpt2`) with every pre-tokenizer of `GGUFPreTokenizer.all`, written as the Hugging Face pre-tokenizers that cut
/// text the same way; SentencePiece BPE (`llama`), whose merges are derived from the piece scores, with byte fallback.
public enum GGUFTokenizerExport {
    /// File name → contents of the Hugging Face tokenizer files for the tokenizer in `gguf`.
    /// - Throws: `GGUFTokenizerExportError` naming the file when the vocabulary is missing, malformed or of
    ///   a kind the export does not write.
    public static func files(from gguf: GGUFFile) throws -> [String: String] {
        try files(metadata: gguf.metadata, file: gguf.path)
    }

    /// Stands for model.vocab while the rest of tokenizer.json is serialized; it is replaced by the
    /// hand-written vocabulary (the only string value with U+0000 in the document).
    static let vocabMarker = "\u{0}crucible-vocabulary\u{0}"

    /// `text` with the first occurrence of `target` replaced, compared by bytes (Foundation's search would
    /// compare canonically equivalent text as equal).
    static func replacingFirst(_ target: String, in text: String, with replacement: String) -> String {
        let bytes = Array(text.utf8), needle = Array(target.utf8)
        guard !needle.isEmpty, bytes.count >= needle.count else { return text }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0]
            && bytes[start..<(start + needle.count)].elementsEqual(needle) {
            return String(decoding: bytes[..<start], as: UTF8.self) + replacement
                + String(decoding: bytes[(start + needle.count)...], as: UTF8.self)
        }
        return text
    }

    /// The same from GGUF metadata; `file` is used in messages.
    public static func files(metadata md: [String: GGUFValue], file: String) throws -> [String: String] {
        func key(_ name: String) -> GGUFValue? { md["tokenizer.ggml." + name] }
        func fail(_ reason: String) -> GGUFTokenizerExportError { GGUFTokenizerExportError(file: file, reason: reason) }

        guard let model = key("model")?.stringValue else { throw fail("tokenizer.ggml.model is missing") }
        if model == "gemma4" {
            throw fail("tokenizer.ggml.model = gemma4 is read but not exported: the Hugging Face files of Gemma 4 (raw UTF-8 "
                + "merges, ▁ for spaces, byte fallback) have not been checked against transformers; take the tokenizer from "
                + "the Hugging Face parent")
        }
        guard model == "gpt2" || model == "llama" else {
            throw fail("tokenizer.ggml.model = \(model) is not supported (only gpt2, byte-level BPE, and llama, SentencePiece BPE)")
        }
        let sentencePiece = model == "llama"
        guard var tokens = key("tokens")?.stringArray, !tokens.isEmpty else {
            throw fail("tokenizer.ggml.tokens is missing, empty or not an array of strings")
        }
        let n = tokens.count
        // llama.cpp gives empty strings a placeholder that can never match text; keep the same spelling.
        for i in tokens.indices where tokens[i].isEmpty { tokens[i] = "[EMPTY_\(i)]" }
        var types = [Int](repeating: 1, count: n)
        if let value = key("token_type") {
            guard let t = value.intArray, t.count >= n else { throw fail("tokenizer.ggml.token_type must hold an integer per token") }
            types = Array(t.prefix(n))
        }
        var merges: [(String, String)] = []
        var family: GGUFPreTokenizer?
        let pre = key("pre")?.stringValue ?? "default"
        if sentencePiece {
            var scores = [Float](repeating: 0, count: n)
            if let value = key("scores") {
                guard let s = value.floatArray, s.count >= n else { throw fail("tokenizer.ggml.scores must hold a number per token") }
                scores = Array(s.prefix(n))
            }
            merges = sentencePieceMerges(tokens: tokens, scores: scores)
        } else {
            guard let mergeStrings = key("merges")?.stringArray else {
                throw fail("tokenizer.ggml.merges is missing or not an array of strings")
            }
            merges = try GGUFVocabularyLoader.merges(mergeStrings, malformed: fail)
            guard let f = GGUFPreTokenizer.named(pre) else {
                throw fail("pre-tokenizer tokenizer.ggml.pre = \(pre) has no Hugging Face equivalent in the export")
            }
            family = f
        }

        let control = 3, userDefined = 4
        for i in 0..<n where GGUFVocabularyLoader.controlSpellings.contains(tokens[i]) { types[i] = control }

        func specialID(_ name: String, _ fallback: Int?) -> Int? {
            var id = fallback.flatMap { $0 < n ? $0 : nil }
            if let v = key(name)?.intValue, v >= 0, v < n { id = v }
            return id
        }
        // Special ids: llama.cpp's defaults (gpt2: 11; llama: 1, 2, 0) when inside the vocabulary, replaced by the file's ids.
        let bosID = specialID("bos_token_id", sentencePiece ? 1 : 11)
        let eosID = specialID("eos_token_id", sentencePiece ? 2 : 11)
        let unknownID = specialID("unknown_token_id", sentencePiece ? 0 : nil)
        let padID = specialID("padding_token_id", nil)
        let addBOS = key("add_bos_token")?.boolValue ?? (sentencePiece || family?.addsBOS == true)
        let addEOS = key("add_eos_token")?.boolValue ?? false
        if addBOS && bosID == nil { throw fail("add_bos_token is true but the vocabulary has no BOS token") }
        if addEOS && eosID == nil { throw fail("add_eos_token is true but the vocabulary has no EOS token") }

        // model.vocab holds every token once (the first id of a repeated spelling); added_tokens repeats the
        // control and user-defined ones so the libraries match them in text before the BPE model runs.
        // Spellings are compared by their bytes: Swift's String equality would merge canonically equivalent
        // tokens (Llama's U+03AF "ί" and U+1F77 "ί" are two tokens), so the vocabulary is written by hand.
        var vocabText = "{"
        var seen = Set<[UInt8]>()
        seen.reserveCapacity(n)
        var added: [JSONValue] = []
        for i in 0..<n where seen.insert(Array(tokens[i].utf8)).inserted {
            vocabText += (seen.count == 1 ? "\n" : ",\n") + "      " + JSONValue.quote(tokens[i]) + ": " + String(i)
            if types[i] == control || types[i] == userDefined {
                added.append(.object(JSONObject([
                    ("id", .int(Int64(i))), ("content", .string(tokens[i])), ("single_word", .bool(false)),
                    ("lstrip", .bool(false)), ("rstrip", .bool(false)), ("normalized", .bool(false)),
                    ("special", .bool(types[i] == control)),
                ])))
            }
        }

        // "a b" strings load in every tokenizers release; pairs (tokenizers 0.20+) only when a part has a space.
        vocabText += "\n    }"
        let pairs = merges.contains { $0.0.utf8.contains(0x20) || $0.1.utf8.contains(0x20) }
        let mergesJSON: [JSONValue] = merges.map { pairs ? .array([.string($0.0), .string($0.1)]) : .string($0.0 + " " + $0.1) }
        let modelJSON = JSONValue.object(JSONObject([
            ("type", .string("BPE")), ("dropout", .null), ("unk_token", unknownID.map { .string(tokens[$0]) } ?? .null),
            ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", .bool(sentencePiece)),
            ("byte_fallback", .bool(sentencePiece)), ("ignore_merges", .bool(family?.ignoresMerges == true)),
            ("vocab", .string(Self.vocabMarker)), ("merges", .array(mergesJSON)),
        ]))

        let byteLevelOutput = JSONValue.object(JSONObject([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)), ("trim_offsets", .bool(false)), ("use_regex", .bool(true)),
        ]))
        var postProcessor = sentencePiece ? JSONValue.null : byteLevelOutput
        var prefix: [Int] = [], suffix: [Int] = []
        if addBOS, let bosID { prefix = [bosID] }
        if addEOS, let eosID { suffix = [eosID] }
        if !prefix.isEmpty || !suffix.isEmpty {
            func special(_ id: Int, typeID: Int) -> JSONValue {
                .object(JSONObject([("SpecialToken", .object(JSONObject([("id", .string(tokens[id])), ("type_id",
                    .int(Int64(typeID)))])))]))
            }
            func sequence(_ name: String, typeID: Int) -> JSONValue {
                .object(JSONObject([("Sequence", .object(JSONObject([("id", .string(name)), ("type_id", .int(Int64(typeID)))])))]))
            }
            let single = prefix.map { special($0, typeID: 0) } + [sequence("A", typeID: 0)] + suffix.map { special($0, typeID: 0) }
            let pair = single + prefix.map { special($0, typeID: 1) } + [sequence("B", typeID: 1)] + suffix.map { special($0, typeID: 1) }
            var specials = JSONObject()
            for id in prefix + suffix {
                specials[tokens[id]] = .object(JSONObject([
                    ("id", .string(tokens[id])), ("ids", .array([.int(Int64(id))])), ("tokens", .array([.string(tokens[id])])),
                ]))
            }
            let template = JSONValue.object(JSONObject([
                ("type", .string("TemplateProcessing")), ("single", .array(single)), ("pair", .array(pair)), ("special_tokens",
                    .object(specials)),
            ]))
            postProcessor = sentencePiece ? template
                : .object(JSONObject([("type", .string("Sequence")), ("processors", .array([byteLevelOutput, template]))]))
        }

        // SentencePiece spells spaces as ▁ and (unless add_space_prefix is false) puts one before the text;
        // the decoder undoes both and turns <0xXX> runs back into bytes. Byte-level BPE has no normalizer.
        var normalizer = JSONValue.null
        var decoder = JSONValue.object(JSONObject([
            ("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)), ("trim_offsets", .bool(true)), ("use_regex", .bool(true)),
        ]))
        if sentencePiece {
            let addSpacePrefix = key("add_space_prefix")?.boolValue ?? true
            let replace = JSONValue.object(JSONObject([("type", .string("Replace")), ("pattern", .object(JSONObject([("String",
                .string(" "))]))),
                                                       ("content", .string("\u{2581}"))]))
            let prepend = JSONValue.object(JSONObject([("type", .string("Prepend")), ("prepend", .string("\u{2581}"))]))
            normalizer = .object(JSONObject([("type", .string("Sequence")), ("normalizers", .array(addSpacePrefix ? [prepend,
                replace] : [replace]))]))
            var steps: [JSONValue] = [
                .object(JSONObject([("type", .string("Replace")), ("pattern", .object(JSONObject([("String", .string("\u{2581}"))]))),
                                    ("content", .string(" "))])),
                .object(JSONObject([("type", .string("ByteFallback"))])),
                .object(JSONObject([("type", .string("Fuse"))])),
            ]
            if addSpacePrefix {
                steps.append(.object(JSONObject([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop",
                    .int(0))])))
            }
            decoder = .object(JSONObject([("type", .string("Sequence")), ("decoders", .array(steps))]))
        }

        let tokenizerJSON = JSONValue.object(JSONObject([
            ("version", .string("1.0")), ("truncation", .null), ("padding", .null), ("added_tokens", .array(added)),
            ("normalizer", normalizer), ("pre_tokenizer", family.map { huggingFacePreTokenizer($0.rules) } ?? .null), ("post_processor",
                postProcessor),
            ("decoder", decoder),
            ("model", modelJSON),
        ]))

        // tokenizer_config.json: the special-token spellings and the flags transformers reads.
        var config = JSONObject()
        config["add_bos_token"] = .bool(addBOS)
        config["add_eos_token"] = .bool(addEOS)
        if let bosID { config["bos_token"] = .string(tokens[bosID]) }
        if let eosID { config["eos_token"] = .string(tokens[eosID]) }
        if let unknownID { config["unk_token"] = .string(tokens[unknownID]) }
        if let padID { config["pad_token"] = .string(tokens[padID]) }
        // llama.cpp's space clean-up when decoding; transformers' is the nearest equivalent.
        config["clean_up_tokenization_spaces"] = .bool(!sentencePiece && family?.keepsSpaces != true)
        if let arch = md["general.architecture"]?.stringValue, let ctx = md["\(arch).context_length"]?.intValue, ctx > 0 {
            config["model_max_length"] = .int(Int64(ctx))
        }
        if sentencePiece {
            // The Llama tokenizer classes apply add_bos_token / add_eos_token themselves; legacy keeps the ▁ normalizer.
            config["tokenizer_class"] = .string("LlamaTokenizerFast")
            config["legacy"] = .bool(true)
        } else {
            config["tokenizer_class"] = .string("PreTrainedTokenizerFast")
        }
        if let template = md["tokenizer.chat_template"]?.stringValue {
            config["chat_template"] = .string(template)
        }

        var specialMap = JSONObject()
        func entry(_ id: Int) -> JSONValue {
            .object(JSONObject([("content", .string(tokens[id])), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                                ("rstrip", .bool(false)), ("single_word", .bool(false))]))
        }
        if let bosID { specialMap["bos_token"] = entry(bosID) }
        if let eosID { specialMap["eos_token"] = entry(eosID) }
        if let unknownID { specialMap["unk_token"] = entry(unknownID) }
        if let padID { specialMap["pad_token"] = entry(padID) }

        var generation = JSONObject()
        if let bosID { generation["bos_token_id"] = .int(Int64(bosID)) }
        if let eosID { generation["eos_token_id"] = .int(Int64(eosID)) }
        if let padID { generation["pad_token_id"] = .int(Int64(padID)) }

        func text(_ value: JSONValue) -> String { value.serialized(indent: 2) + "\n" }
        return [
            "tokenizer.json": Self.replacingFirst(JSONValue.quote(Self.vocabMarker), in: text(tokenizerJSON), with: vocabText),
            "tokenizer_config.json": text(.object(config)),
            "special_tokens_map.json": text(.object(specialMap)),
            "generation_config.json": text(.object(generation)),
        ]
    }
}

extension GGUFTokenizerExport {
    /// The merge list of a SentencePiece BPE vocabulary, derived from its pieces and scores the way the
    /// Hugging Face converters do it: every split of a piece into two pieces of the vocabulary is a merge
    /// ranked by the score of the whole piece (best first); the splits of one piece are ordered by the ids
    /// of their left, then right part, and equal scores keep vocabulary order.
    static func sentencePieceMerges(tokens: [String], scores: [Float]) -> [(String, String)] {
        // Keyed by bytes, not String: canonically equivalent spellings are different pieces.
        var idOf: [[UInt8]: Int] = [:]
        idOf.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where idOf[Array(t.utf8)] == nil { idOf[Array(t.utf8)] = i }
        struct Candidate { let score: Float; let order: Int; let left: Int; let right: Int }
        var candidates: [Candidate] = []
        for (id, piece) in tokens.enumerated() where idOf[Array(piece.utf8)] == id {
            let bytes = Array(piece.utf8)
            var local: [(Int, Int)] = []
            // Cut between characters (code points), never inside one's UTF-8 bytes.
            for cut in 1..<max(bytes.count, 1) where bytes[cut] & 0xC0 != 0x80 {
                if let l = idOf[Array(bytes[..<cut])], let r = idOf[Array(bytes[cut...])] { local.append((l, r)) }
            }
            local.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            for (l, r) in local { candidates.append(Candidate(score: scores[id], order: candidates.count, left: l, right: r)) }
        }
        candidates.sort { $0.score != $1.score ? $0.score > $1.score : $0.order < $1.order }
        return candidates.map { (tokens[$0.left], tokens[$0.right]) }
    }
}

extension GGUFTokenizerExport {
    /// The Hugging Face pre-tokenizer that cuts text as `rules` do: one `Split` per rule (`Digits` for single
    /// digits), then the byte-level mapping, which applies the GPT-2 split itself when that rule comes last.
    static func huggingFacePreTokenizer(_ rules: [SplitRule]) -> JSONValue {
        func split(_ rule: SplitRule) -> JSONValue {
            if rule == .isolateDigits {
                return .object(JSONObject([("type", .string("Digits")), ("individual_digits", .bool(true))]))
            }
            return .object(JSONObject([("type", .string("Split")), ("pattern", .object(JSONObject([("Regex", .string(rule.pattern))]))),
                                       ("behavior", .string("Isolated")), ("invert", .bool(false))]))
        }
        func byteLevel(useRegex: Bool) -> JSONValue {
            .object(JSONObject([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)),
                                ("trim_offsets", .bool(true)), ("use_regex", .bool(useRegex))]))
        }
        let gpt2Last = rules.last == .gpt2
        let items = (gpt2Last ? rules.dropLast() : rules[...]).map(split) + [byteLevel(useRegex: gpt2Last)]
        return items.count == 1 ? items[0] : .object(JSONObject([("type", .string("Sequence")), ("pretokenizers", .array(items))]))
    }
}
