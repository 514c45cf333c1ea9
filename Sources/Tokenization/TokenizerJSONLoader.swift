import Checkpoints

/// Builds a tokenizer from a Hugging Face `tokenizer.json` (and `tokenizer_config.json`).
///
/// Supported: `model.type` BPE, either byte-level (pre-tokenizer `ByteLevel`, or a `Sequence` of
/// `Split` with the patterns of `SplitRule` (GPT-2, Llama 3, Qwen2, Qwen3.5, DeepSeek...), `Digits(individual_digits)` and
/// `ByteLevel(use_regex: false)`) or SentencePiece-style (`byte_fallback`, `▁` for spaces via a
/// `Prepend`/`Replace` normalizer or a `Metaspace` pre-tokenizer). Anything else is refused with
/// `TokenizerError.unsupported` rather than tokenized differently from the reference.
enum TokenizerJSONLoader {
    /// The split patterns of the known pre-tokenizers, as written in tokenizer.json files (and by the GGUF export).
    static let knownPatterns: [String: SplitRule] = Dictionary(uniqueKeysWithValues: SplitRule.allCases.map { ($0.pattern, $0) })

    /// - Parameter qwen2Pipeline: build the byte-level pipeline transformers' `Qwen2Tokenizer` class builds (Qwen2
    ///   split pattern, NFC) instead of the file's, as transformers 5 does for some model types (`TokenizerLoader.loadAsTransformers`).
    static func load(_ root: JSONValue, config: JSONValue?, file: String, qwen2Pipeline: Bool = false) throws -> BPETokenizer {
        func malformed(_ reason: String) -> TokenizerError { .malformed(file: file, reason: reason) }
        func unsupported(_ kind: String, _ value: String) -> TokenizerError { .unsupported(kind: kind, value: value, file: file) }

        guard let model = root["model"], model.objectValue != nil else { throw malformed("no \"model\" object") }
        // An absent type is BPE (older files); one that is present but not a name is a broken file.
        if let type = model["type"], type.stringValue == nil { throw malformed("model.type is \(type), expected a name such as \"BPE\"") }
        let modelType = model["type"]?.stringValue ?? "BPE"
        guard modelType == "BPE" else { throw unsupported("model type", modelType) }
        guard let vocabObject = model["vocab"]?.objectValue else { throw malformed("model.vocab is not an object") }
        for option in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[option]?.stringValue, !value.isEmpty { throw unsupported("BPE option", "\(option) = \(value)") }
        }

        // Vocabulary: model.vocab plus added_tokens (which may extend it).
        // Keyed by bytes: Swift's String equality would merge canonically equivalent tokens (U+03AF / U+1F77).
        var idOf: [[UInt8]: Int] = [:]
        var maxID = -1
        for (token, value) in vocabObject.pairs {
            guard let id = value.intValue, id >= 0 else { throw malformed("model.vocab[\"\(token)\"] is not a token id") }
            idOf[Array(token.utf8)] = id
            maxID = max(maxID, id)
        }
        struct Added { let id: Int; let content: String; let special: Bool; let lstrip: Bool; let rstrip: Bool }
        var added: [Added] = []
        for (i, entry) in (root["added_tokens"]?.arrayValue ?? []).enumerated() {
            guard let id = entry["id"]?.intValue, id >= 0, let content = entry["content"]?.stringValue else {
                throw malformed("added_tokens[\(i)] needs an integer id and a string content")
            }
            added.append(Added(id: id, content: content, special: entry["special"]?.boolValue ?? false,
                               lstrip: entry["lstrip"]?.boolValue ?? false, rstrip: entry["rstrip"]?.boolValue ?? false))
            maxID = max(maxID, id)
        }
        guard maxID >= 0 else { throw malformed("the vocabulary is empty") }
        // Ids index arrays; a stray huge id must not become a huge allocation.
        guard maxID < max(1 << 20, 4 * (vocabObject.count + added.count)) else {
            throw malformed("token id \(maxID) is far beyond the \(vocabObject.count + added.count) entries")
        }
        let n = maxID + 1
        var tokens = [String](repeating: "", count: n)
        var kinds = [TokenKind](repeating: .undefined, count: n)
        for (token, id) in vocabObject.pairs { tokens[id.intValue ?? 0] = token; kinds[id.intValue ?? 0] = .normal }
        var stripLeft: Set<Int> = [], stripRight: Set<Int> = []
        for a in added {
            tokens[a.id] = a.content
            kinds[a.id] = a.special ? .control : .userDefined
            if a.lstrip { stripLeft.insert(a.id) }
            if a.rstrip { stripRight.insert(a.id) }
        }
        let byteFallback = model["byte_fallback"]?.boolValue ?? false
        if byteFallback {
            for id in 0..<n where kinds[id] == .normal && BPETokenizer.parseByteToken(tokens[id]) != nil { kinds[id] = .byte }
        }
        // The unknown token stands in for text the model cannot spell. It is cut out of text (and skipped when
        // decoding) only when it is also an added token: `tokenizers` treats a `model.unk_token` that is not in
        // `added_tokens` (transformers' Gemma conversion writes it so) as an ordinary vocabulary entry.
        var unknownID: Int?
        if let unk = model["unk_token"]?.stringValue, let id = idOf[Array(unk.utf8)]
            ?? added.first(where: { $0.content.utf8.elementsEqual(unk.utf8) })?.id {
            unknownID = id
        }

        // Merges: "a b" strings (older files) or ["a", "b"] pairs.
        var merges: [(String, String)] = []
        for (i, m) in (model["merges"]?.arrayValue ?? []).enumerated() {
            if let s = m.stringValue {
                let u = Array(s.utf8)
                guard u.count >= 3, let space = u[1...].firstIndex(of: 0x20) else { throw malformed("model.merges[\(i)] = '\(s)' is not "
                    + "two tokens") }
                merges.append((String(decoding: u[..<space], as: UTF8.self), String(decoding: u[(space + 1)...], as: UTF8.self)))
            } else if let pair = m.arrayValue, pair.count == 2, let a = pair[0].stringValue, let b = pair[1].stringValue {
                merges.append((a, b))
            } else {
                throw malformed("model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        // Pipeline: byte-level or SentencePiece-style.
        let normalizer = root["normalizer"].flatMap { $0.isNull ? nil : $0 }
        let preTokenizerJSON = root["pre_tokenizer"].flatMap { $0.isNull ? nil : $0 }
        let algorithm: MergeAlgorithm
        var vocabulary: Vocabulary
        var normalizesNFC = false
        if qwen2Pipeline {
            vocabulary = Vocabulary(tokens: tokens, kinds: kinds, scores: [Float](repeating: 0, count: n))
            algorithm = .byteLevel(ByteLevelBPE(vocabulary: vocabulary, merges: merges, ignoreMerges: false), PreTokenizer(rules: [.qwen2]))
            normalizesNFC = true
        } else if let rules = try byteLevelRules(preTokenizerJSON, unsupported: unsupported) {
            if let normalizer {
                // Qwen2 composes text (NFC) before splitting; nothing else is implemented.
                guard normalizer["type"]?.stringValue == "NFC" else { throw unsupported("normalizer",
                                                                                        normalizer["type"]?.stringValue ?? "?") }
                normalizesNFC = true
            }
            vocabulary = Vocabulary(tokens: tokens, kinds: kinds, scores: [Float](repeating: 0, count: n))
            let ignoreMerges = model["ignore_merges"]?.boolValue ?? false
            algorithm = .byteLevel(ByteLevelBPE(vocabulary: vocabulary, merges: merges, ignoreMerges: ignoreMerges),
                                   PreTokenizer(rules: rules))
        } else {
            let addSpacePrefix = try sentencePieceSpacePrefix(normalizer: normalizer, preTokenizer: preTokenizerJSON,
                                                              unsupported: unsupported)
            // SentencePiece merges by score; a merge's rank stands in for it (earlier merge = higher score).
            // Tokens no merge produces get -inf and are never formed by merging.
            var scores = [Float](repeating: -.infinity, count: n)
            for (rank, (a, b)) in merges.enumerated() {
                if let id = idOf[Array((a + b).utf8)], scores[id] == -.infinity { scores[id] = -Float(rank) }
            }
            vocabulary = Vocabulary(tokens: tokens, kinds: kinds, scores: scores)
            algorithm = .sentencePiece(SentencePieceBPE(vocabulary: vocabulary, unknownID: unknownID), addSpacePrefix: addSpacePrefix)
        }

        // BOS/EOS and what addSpecial adds.
        func tokenID(_ value: JSONValue?) -> Int? {
            guard let value else { return nil }
            let text = value.stringValue ?? value["content"]?.stringValue
            return text.flatMap { vocabulary.id(of: $0) }
        }
        let bosID = tokenID(config?["bos_token"])
        let eosID = tokenID(config?["eos_token"])
        var (prefix, suffix) = try template(root["post_processor"], vocabulary: vocabulary, unsupported: unsupported, malformed: malformed)
        if let bad = (prefix + suffix).first(where: { !(0..<n).contains($0) }) {
            throw malformed("post_processor adds token id \(bad), outside the vocabulary")
        }
        let tokenizerClass = config?["tokenizer_class"]?.stringValue ?? ""
        let configAddsBOS = config?["add_bos_token"]?.boolValue
        let configAddsEOS = config?["add_eos_token"]?.boolValue
        // Slow-tokenizer classes (Llama, CodeLlama, Gemma) apply add_bos_token/add_eos_token themselves;
        // without a template the flags are the only rule there is.
        let flagsRule = tokenizerClass.hasPrefix("Llama") || tokenizerClass.hasPrefix("CodeLlama") || tokenizerClass.hasPrefix("Gemma")
        if flagsRule || (prefix.isEmpty && suffix.isEmpty && root["post_processor"]?.isNull != false) {
            if let add = configAddsBOS, let bosID { prefix = add ? [bosID] : [] }
            if let add = configAddsEOS, let eosID { suffix = add ? [eosID] : [] }
        }
        let cleanup: SpaceCleanup = config?["clean_up_tokenization_spaces"]?.boolValue == true ? .huggingFace : .none
        return BPETokenizer(TokenizerSetup(vocabulary: vocabulary, algorithm: algorithm, bosID: bosID, eosID: eosID,
                                           prefixIDs: prefix, suffixIDs: suffix, cleanup: cleanup,
                                           stripLeft: stripLeft, stripRight: stripRight, composesNFC: normalizesNFC))
    }

    /// The split rules of a byte-level pre-tokenizer, or nil when there is none (SentencePiece style).
    static func byteLevelRules(_ json: JSONValue?, unsupported: (String, String) -> TokenizerError) throws -> [SplitRule]? {
        guard let json else { return nil }
        let type = json["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            if json["add_prefix_space"]?.boolValue == true { throw unsupported("pre-tokenizer option",
                                                                               "ByteLevel.add_prefix_space = true") }
            return json["use_regex"]?.boolValue == false ? [] : [.gpt2]
        case "Sequence":
            var rules: [SplitRule] = []
            var sawByteLevel = false
            for item in json["pretokenizers"]?.arrayValue ?? [] {
                let itemType = item["type"]?.stringValue ?? "?"
                switch itemType {
                case "Split":
                    let pattern = item["pattern"]?["Regex"]?.stringValue ?? item["pattern"]?["String"]?.stringValue ?? "?"
                    guard let rule = knownPatterns[pattern] else { throw unsupported("Split pattern", pattern) }
                    let behavior = item["behavior"]?.stringValue ?? "Isolated"
                    guard behavior == "Isolated", item["invert"]?.boolValue != true else { throw unsupported("Split behavior", behavior) }
                    rules.append(rule)
                case "Digits":
                    guard item["individual_digits"]?.boolValue == true else { throw unsupported("pre-tokenizer",
                        "Digits(individual_digits: false)") }
                    rules.append(.isolateDigits)
                case "ByteLevel":
                    if item["add_prefix_space"]?.boolValue == true { throw unsupported("pre-tokenizer option",
                                                                                       "ByteLevel.add_prefix_space = true") }
                    if item["use_regex"]?.boolValue != false { rules.append(.gpt2) }
                    sawByteLevel = true
                case "Metaspace":
                    return nil
                default:
                    throw unsupported("pre-tokenizer", itemType)
                }
            }
            guard sawByteLevel else { throw unsupported("pre-tokenizer", "Sequence without ByteLevel") }
            return rules
        case "Metaspace":
            return nil
        case "Split" where isSpaceSplit(json):
            // Gemma's files: checked against the normalizer by `sentencePieceSpacePrefix`.
            return nil
        default:
            throw unsupported("pre-tokenizer", type)
        }
    }

    /// Whether a SentencePiece-style pipeline puts `▁` before the text, checking that it spells spaces as `▁`.
    static func sentencePieceSpacePrefix(normalizer: JSONValue?, preTokenizer: JSONValue?,
                                         unsupported: (String, String) -> TokenizerError) throws -> Bool {
        // transformers' Gemma conversion adds `Split(" ", merged_with_previous)` after a normalizer that has already
        // spelled every space `▁`: it never finds a space, so it changes nothing. Accepted only with such a normalizer.
        if let pre = preTokenizer, isSpaceSplit(pre) {
            let prepends = try sentencePieceSpacePrefix(normalizer: normalizer, preTokenizer: nil, unsupported: unsupported)
            return prepends
        }
        if let pre = preTokenizer {
            let metaspace = pre["type"]?.stringValue == "Metaspace" ? pre
                : pre["pretokenizers"]?.arrayValue?.first { $0["type"]?.stringValue == "Metaspace" }
            guard let metaspace else { throw unsupported("pre-tokenizer", pre["type"]?.stringValue ?? "?") }
            if metaspace["split"]?.boolValue == true { throw unsupported("pre-tokenizer option", "Metaspace.split = true") }
            if let normalizer { throw unsupported("normalizer", normalizer["type"]?.stringValue ?? "?") }
            if let scheme = metaspace["prepend_scheme"]?.stringValue { return scheme != "never" }
            return metaspace["add_prefix_space"]?.boolValue ?? true
        }
        guard let normalizer else { throw unsupported("pipeline", "BPE without a byte-level pre-tokenizer or a ▁ normalizer") }
        let steps = normalizer["type"]?.stringValue == "Sequence" ? (normalizer["normalizers"]?.arrayValue ?? []) : [normalizer]
        var prepends = false, replacesSpaces = false
        for step in steps {
            switch step["type"]?.stringValue ?? "?" {
            case "Prepend" where step["prepend"]?.stringValue == "\u{2581}": prepends = true
            case "Replace" where step["pattern"]?["String"]?.stringValue == " "
                && step["content"]?.stringValue == "\u{2581}": replacesSpaces = true
            default: throw unsupported("normalizer", step["type"]?.stringValue ?? "?")
            }
        }
        guard replacesSpaces else { throw unsupported("normalizer", "no Replace(' ' → '▁')") }
        return prepends
    }

    /// A `Split` on the literal string " " (any behavior, not inverted): the pre-tokenizer of Gemma's tokenizer.json.
    static func isSpaceSplit(_ json: JSONValue) -> Bool {
        json["type"]?.stringValue == "Split" && json["pattern"]?["String"]?.stringValue == " " && json["invert"]?.boolValue != true
    }

    /// Ids the post-processor puts before and after a single sequence.
    static func template(_ json: JSONValue?, vocabulary: Vocabulary, unsupported: (String, String) -> TokenizerError,
                         malformed: (String) -> TokenizerError) throws -> (prefix: [Int], suffix: [Int]) {
        guard let json, !json.isNull else { return ([], []) }
        let type = json["type"]?.stringValue ?? "?"
        switch type {
        case "ByteLevel":
            return ([], [])
        case "Sequence":
            var result: ([Int], [Int]) = ([], [])
            for item in json["processors"]?.arrayValue ?? [] {
                let part = try template(item, vocabulary: vocabulary, unsupported: unsupported, malformed: malformed)
                result.0 += part.prefix
                result.1 += part.suffix
            }
            return result
        case "TemplateProcessing":
            var prefix: [Int] = [], suffix: [Int] = []
            var seenSequence = false
            for piece in json["single"]?.arrayValue ?? [] {
                if piece["Sequence"] != nil { seenSequence = true; continue }
                guard let name = piece["SpecialToken"]?["id"]?.stringValue else { throw malformed("post_processor.single has an unknown "
                    + "item") }
                let ids = json["special_tokens"]?[name]?["ids"]?.arrayValue?.compactMap { $0.intValue }
                    ?? vocabulary.id(of: name).map { [$0] }
                guard let ids else { throw malformed("post_processor special token '\(name)' has no id") }
                if seenSequence { suffix += ids } else { prefix += ids }
            }
            return (prefix, suffix)
        case "RobertaProcessing", "BertProcessing":
            guard let cls = json["cls"]?.arrayValue, cls.count == 2, let clsID = cls[1].intValue,
                  let sep = json["sep"]?.arrayValue, sep.count == 2, let sepID = sep[1].intValue
            else { throw malformed("\(type) needs cls and sep as [token, id]") }
            return ([clsID], [sepID])
        default:
            throw unsupported("post-processor", type)
        }
    }
}
