import Checkpoints

/// Builds a tokenizer from the `tokenizer.ggml.*` metadata of a GGUF file, with llama.cpp's defaults
/// (`llama_vocab::impl::load`) for every key a converter may have left out.
enum GGUFVocabularyLoader {
    /// End-of-turn spellings llama.cpp makes control tokens whatever the file says.
    static let controlSpellings: Set<String> = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                                                "<|end_of_text|>", "<EOT>", "_<EOT>", "<|eom_id|>", "<end_of_utterance>"]

    /// `tokenizer.ggml.merges` as pairs: the separator is the first space after the first character (a merge part is
    /// never empty). A malformed entry throws `malformed`'s error.
    static func merges<E: Error>(_ strings: [String], malformed: (String) -> E) throws -> [(String, String)] {
        var merges: [(String, String)] = []
        merges.reserveCapacity(strings.count)
        for (i, m) in strings.enumerated() {
            let u = Array(m.utf8)
            guard u.count >= 3, let space = u[1...].firstIndex(of: 0x20) else {
                throw malformed("tokenizer.ggml.merges[\(i)] = '\(m)' is not two tokens separated by a space")
            }
            merges.append((String(decoding: u[..<space], as: UTF8.self), String(decoding: u[(space + 1)...], as: UTF8.self)))
        }
        return merges
    }

    static func load(metadata md: [String: GGUFValue], file: String) throws -> BPETokenizer {
        func key(_ name: String) -> GGUFValue? { md["tokenizer.ggml." + name] }
        func malformed(_ reason: String) -> TokenizerError { .malformed(file: file, reason: reason) }

        guard let model = key("model")?.stringValue else { throw malformed("tokenizer.ggml.model is missing") }
        guard model == "llama" || model == "gpt2" || model == "gemma4" else {
            throw TokenizerError.unsupported(kind: "tokenizer model (tokenizer.ggml.model)", value: model, file: file)
        }
        guard var tokens = key("tokens")?.stringArray else { throw malformed("tokenizer.ggml.tokens is missing or not an array of "
            + "strings") }
        let n = tokens.count
        guard n > 0 else { throw malformed("tokenizer.ggml.tokens is empty") }
        // llama.cpp gives empty strings a placeholder so they can never match text.
        for i in tokens.indices where tokens[i].isEmpty { tokens[i] = "[EMPTY_\(i)]" }

        var scores = [Float](repeating: 0, count: n)
        if let value = key("scores") {
            guard let s = value.floatArray, s.count >= n else { throw malformed("tokenizer.ggml.scores must hold a number per token") }
            scores = Array(s.prefix(n))
        }
        var kinds = [TokenKind](repeating: .normal, count: n)
        if let value = key("token_type") {
            guard let t = value.intArray, t.count >= n else { throw malformed("tokenizer.ggml.token_type must hold an integer per token") }
            for i in 0..<n { kinds[i] = TokenKind(rawValue: t[i]) ?? .undefined }
        }
        for i in 0..<n where Self.controlSpellings.contains(tokens[i]) && kinds[i] != .control { kinds[i] = .control }

        let vocabulary = Vocabulary(tokens: tokens, kinds: kinds, scores: scores)

        var bosID: Int?, eosID: Int?, unknownID: Int?
        var addBOS: Bool, addEOS = false
        let algorithm: MergeAlgorithm
        var cleanup = SpaceCleanup.none
        if model == "llama" {
            (bosID, eosID, unknownID) = (1, 2, 0)
            addBOS = true
            let addSpacePrefix = key("add_space_prefix")?.boolValue ?? true
            algorithm = .sentencePiece(SentencePieceBPE(vocabulary: vocabulary, unknownID: nil), addSpacePrefix: addSpacePrefix)
        } else if model == "gemma4" {
            // llama.cpp: BPE merges over raw UTF-8 with spaces as `▁`, split only at line feeds; no default special
            // ids; BOS is added even when the file says not to; the pre-tokenizer key is ignored.
            guard let mergeStrings = key("merges")?.stringArray else {
                throw malformed("tokenizer.ggml.merges is missing or not an array of strings (required for gemma4 vocabularies)")
            }
            let merges = try Self.merges(mergeStrings, malformed: malformed)
            addBOS = true
            cleanup = .llamaCpp
            let bpe = ByteLevelBPE(vocabulary: vocabulary, merges: merges, ignoreMerges: false, rawUTF8: true)
            algorithm = .byteLevel(bpe, PreTokenizer(rules: [.lineFeedRuns]))
        } else {
            guard let mergeStrings = key("merges")?.stringArray else {
                throw malformed("tokenizer.ggml.merges is missing or not an array of strings (required for gpt2 vocabularies)")
            }
            let merges = try Self.merges(mergeStrings, malformed: malformed)
            let pre = key("pre")?.stringValue ?? "default"
            guard let preTokenizer = GGUFPreTokenizer.named(pre) else {
                throw TokenizerError.unsupported(kind: "pre-tokenizer (tokenizer.ggml.pre)", value: pre, file: file)
            }
            (bosID, eosID, unknownID) = (11, 11, nil)
            addBOS = preTokenizer.addsBOS
            cleanup = preTokenizer.keepsSpaces ? .none : .llamaCpp
            let bpe = ByteLevelBPE(vocabulary: vocabulary, merges: merges, ignoreMerges: preTokenizer.ignoresMerges)
            algorithm = .byteLevel(bpe, PreTokenizer(rules: preTokenizer.rules))
        }
        // Defaults outside the vocabulary are disabled; ids in the file replace them when in range.
        func specialID(_ name: String, _ fallback: Int?) -> Int? {
            var id = fallback.flatMap { $0 < n ? $0 : nil }
            if let v = key(name)?.intValue, v >= 0, v < n { id = v }
            return id
        }
        bosID = specialID("bos_token_id", bosID)
        eosID = specialID("eos_token_id", eosID)
        unknownID = specialID("unknown_token_id", unknownID)
        if let v = key("add_bos_token")?.boolValue, model != "gemma4" { addBOS = v }
        if let v = key("add_eos_token")?.boolValue { addEOS = v }
        if addBOS && bosID == nil { throw malformed("add_bos_token is true but the vocabulary has no BOS token") }
        if addEOS && eosID == nil { throw malformed("add_eos_token is true but the vocabulary has no EOS token") }

        var finalAlgorithm = algorithm
        if case let .sentencePiece(_, addSpacePrefix) = algorithm {
            finalAlgorithm = .sentencePiece(SentencePieceBPE(vocabulary: vocabulary, unknownID: unknownID), addSpacePrefix: addSpacePrefix)
        }
        return BPETokenizer(TokenizerSetup(
            vocabulary: vocabulary, algorithm: finalAlgorithm, bosID: bosID, eosID: eosID,
            prefixIDs: addBOS ? [bosID!] : [], suffixIDs: addEOS ? [eosID!] : [], cleanup: cleanup))
    }
}
