import Foundation

/// Text ↔ token ids for one model's vocabulary.
///
/// Implementations are immutable after loading and safe to share across threads.
public protocol Tokenizer: AnyObject, Sendable {
    /// Token ids of `text`.
    /// - Parameters:
    ///   - addSpecial: add the tokens the model's template puts around a sequence (BOS when `addsBOS`,
    ///     EOS when `addsEOS`), as llama.cpp's `add_special` does.
    ///   - parseSpecial: match control tokens such as `<s>` or `<|im_start|>` written in the text. When
    ///     false they are tokenized as plain text. User-defined added tokens are matched either way.
    func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int]
    /// Text of `ids`. With `skipSpecial`, control tokens (and a leading BOS / trailing EOS the tokenizer
    /// adds) are dropped; otherwise they are written as their token text. Ids outside the vocabulary are
    /// ignored; byte sequences that are not valid UTF-8 become U+FFFD.
    func decode(_ ids: [Int], skipSpecial: Bool) -> String
    /// The vocabulary string of a token, as stored (byte-level tokens in their `Ġ`-spelling).
    func tokenText(_ id: Int) -> String?
    /// The id of a vocabulary string, if present.
    func tokenID(_ text: String) -> Int?
    /// What kind of token `id` is.
    func tokenKind(_ id: Int) -> TokenKind?
    var bosID: Int? { get }
    var eosID: Int? { get }
    /// Whether `encode(_:addSpecial: true, ...)` starts with BOS.
    var addsBOS: Bool { get }
    /// Whether `encode(_:addSpecial: true, ...)` ends with EOS.
    var addsEOS: Bool { get }
    var vocabularySize: Int { get }
}

extension Tokenizer {
    /// `decode(ids, skipSpecial: false)`: special tokens are written out.
    public func decode(_ ids: [Int]) -> String { decode(ids, skipSpecial: false) }
}

/// How decoded text is tidied around punctuation.
enum SpaceCleanup: Sendable {
    case none
    /// llama.cpp's `clean_spaces` passes (for most byte-level GGUF vocabularies).
    case llamaCpp
    /// transformers' `clean_up_tokenization` replacements (`clean_up_tokenization_spaces: true`).
    case huggingFace
}

/// Which merge algorithm a vocabulary uses.
enum MergeAlgorithm: Sendable {
    /// GPT-2-style byte-level BPE: split with a pre-tokenizer, spell bytes as characters, merge by rank.
    case byteLevel(ByteLevelBPE, PreTokenizer)
    /// SentencePiece-style BPE: spaces become `▁`, merge by token score, byte fallback.
    case sentencePiece(SentencePieceBPE, addSpacePrefix: Bool)
}

/// Everything a `BPETokenizer` needs, gathered by the loaders.
struct TokenizerSetup {
    var vocabulary: Vocabulary
    var algorithm: MergeAlgorithm
    var bosID: Int?
    var eosID: Int?
    /// Ids `addSpecial` puts before and after the text.
    var prefixIDs: [Int]
    var suffixIDs: [Int]
    var cleanup: SpaceCleanup
    /// Added tokens that swallow whitespace on their left / right when matched (tokenizer.json `lstrip`/`rstrip`).
    var stripLeft: Set<Int> = []
    var stripRight: Set<Int> = []
}

/// The byte-level and SentencePiece BPE tokenizers (GPT-2, Llama 1/2/3, Mistral, Qwen2, SmolLM2).
/// Build one with `TokenizerLoader.load(path:)`.
public final class BPETokenizer: Tokenizer {
    let vocabulary: Vocabulary
    let algorithm: MergeAlgorithm
    public let bosID: Int?
    public let eosID: Int?
    let prefixIDs: [Int]
    let suffixIDs: [Int]
    let cleanup: SpaceCleanup
    let stripLeft: Set<Int>
    let stripRight: Set<Int>
    private let specialOrder: [Int]
    /// Decoded bytes of every token (special tokens as their text).
    private let pieces: [[UInt8]]

    init(_ setup: TokenizerSetup) {
        vocabulary = setup.vocabulary
        algorithm = setup.algorithm
        bosID = setup.bosID
        eosID = setup.eosID
        prefixIDs = setup.prefixIDs
        suffixIDs = setup.suffixIDs
        cleanup = setup.cleanup
        stripLeft = setup.stripLeft
        stripRight = setup.stripRight
        specialOrder = setup.vocabulary.specialMatchOrder()
        pieces = Self.decodedPieces(setup.vocabulary, setup.algorithm)
    }

    public var addsBOS: Bool { bosID.map { prefixIDs.contains($0) } ?? false }
    public var addsEOS: Bool { eosID.map { suffixIDs.contains($0) } ?? false }
    public var vocabularySize: Int { vocabulary.count }

    public func tokenText(_ id: Int) -> String? {
        vocabulary.tokens.indices.contains(id) ? vocabulary.tokens[id] : nil
    }

    public func tokenID(_ text: String) -> Int? { vocabulary.id(of: text) }

    public func tokenKind(_ id: Int) -> TokenKind? {
        vocabulary.kinds.indices.contains(id) ? vocabulary.kinds[id] : nil
    }

    // MARK: Encoding

    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int] {
        var output: [Int] = addSpecial ? prefixIDs : []
        let bytes = Array(text.utf8)
        bytes.withUnsafeBufferPointer { buffer in
            let fragments = partition(buffer, parseSpecial: parseSpecial)
            switch algorithm {
            case let .byteLevel(bpe, preTokenizer):
                var session = ByteLevelSession(bpe: bpe, preTokenizer: preTokenizer, vocabulary: vocabulary)
                for fragment in fragments {
                    switch fragment {
                    case let .text(range): session.encode(UnsafeBufferPointer(rebasing: buffer[range]), into: &output)
                    case let .token(id): output.append(id)
                    }
                }
            case let .sentencePiece(spm, addSpacePrefix):
                // As llama.cpp: the space prefix goes before the first text and after every special token.
                var previousWasSpecial = true
                var escaped: [UInt8] = []
                for fragment in fragments {
                    switch fragment {
                    case let .text(range):
                        escaped.removeAll(keepingCapacity: true)
                        if addSpacePrefix && previousWasSpecial { escaped.append(contentsOf: Self.spaceMark) }
                        for b in buffer[range] {
                            if b == 0x20 { escaped.append(contentsOf: Self.spaceMark) } else { escaped.append(b) }
                        }
                        escaped.withUnsafeBufferPointer { spm.encode($0, vocabulary: vocabulary, output: &output) }
                        previousWasSpecial = false
                    case let .token(id):
                        output.append(id)
                        previousWasSpecial = true
                    }
                }
            }
        }
        if addSpecial { output.append(contentsOf: suffixIDs) }
        return output
    }

    /// `▁` (U+2581), SentencePiece's spelling of a space.
    static let spaceMark: [UInt8] = [0xE2, 0x96, 0x81]

    enum Fragment {
        case text(Range<Int>)
        case token(Int)
    }

    /// Splits the text around special tokens the way llama.cpp's `tokenizer_st_partition` does: each
    /// special token in turn (longest first) is searched in every remaining text fragment. Without
    /// `parseSpecial`, only user-defined tokens are split out.
    func partition(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        guard !text.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<text.count)]
        for id in specialOrder {
            let kind = vocabulary.kinds[id]
            if !parseSpecial && (kind == .control || kind == .unknown) { continue }
            let needle = vocabulary.bytes[id]
            var updated: [Fragment] = []
            var changed = false
            for fragment in fragments {
                guard case var .text(range) = fragment else { updated.append(fragment); continue }
                while let match = find(needle, in: text, range: range) {
                    changed = true
                    var left = range.lowerBound..<match
                    if stripLeft.contains(id) {
                        while !left.isEmpty && isASCIISpace(text[left.upperBound - 1]) { left = left.lowerBound..<(left.upperBound - 1) }
                    }
                    if !left.isEmpty { updated.append(.text(left)) }
                    updated.append(.token(id))
                    var right = (match + needle.count)..<range.upperBound
                    if stripRight.contains(id) {
                        while !right.isEmpty && isASCIISpace(text[right.lowerBound]) { right = (right.lowerBound + 1)..<right.upperBound }
                    }
                    range = right
                }
                if !range.isEmpty { updated.append(.text(range)) }
            }
            if changed { fragments = updated }
        }
        return fragments
    }

    private func isASCIISpace(_ b: UInt8) -> Bool { b == 0x20 || (b >= 0x09 && b <= 0x0D) }

    private func find(_ needle: [UInt8], in text: UnsafeBufferPointer<UInt8>, range: Range<Int>) -> Int? {
        guard !needle.isEmpty, range.count >= needle.count, let base = text.baseAddress else { return nil }
        // memchr for the first byte, then compare the rest.
        let first = Int32(needle[0])
        var position = range.lowerBound
        let lastStart = range.upperBound - needle.count
        while position <= lastStart {
            guard let hit = memchr(base + position, first, lastStart - position + 1) else { return nil }
            let at = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            if memcmp(base + at, needle, needle.count) == 0 { return at }
            position = at + 1
        }
        return nil
    }

    // MARK: Decoding

    public func decode(_ ids: [Int], skipSpecial: Bool) -> String {
        var ids = ids[...]
        var removeSpace: Bool
        if case let .sentencePiece(_, addSpacePrefix) = algorithm { removeSpace = addSpacePrefix } else { removeSpace = false }
        // As llama.cpp's detokenize: a dropped BOS means the text's own leading space is kept.
        if skipSpecial, addsBOS, let first = ids.first, first == bosID {
            removeSpace = false
            ids = ids.dropFirst()
        }
        if skipSpecial, addsEOS, let last = ids.last, last == eosID { ids = ids.dropLast() }
        var bytes: [UInt8] = []
        for id in ids {
            guard pieces.indices.contains(id) else { removeSpace = false; continue }
            let kind = vocabulary.kinds[id]
            if skipSpecial && (kind == .control || kind == .unknown) { removeSpace = false; continue }
            let piece = pieces[id]
            if removeSpace && piece.first == 0x20 {
                bytes.append(contentsOf: piece.dropFirst())
            } else {
                bytes.append(contentsOf: piece)
            }
            removeSpace = false
        }
        switch cleanup {
        case .none: break
        case .llamaCpp: bytes = Self.llamaCppCleanup(bytes)
        case .huggingFace: bytes = Self.huggingFaceCleanup(bytes)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func decodedPieces(_ vocabulary: Vocabulary, _ algorithm: MergeAlgorithm) -> [[UInt8]] {
        let byteLevel: Bool
        if case .byteLevel = algorithm { byteLevel = true } else { byteLevel = false }
        return vocabulary.tokens.indices.map { id -> [UInt8] in
            let text = vocabulary.tokens[id]
            switch vocabulary.kinds[id] {
            case .control, .unknown, .userDefined:
                return vocabulary.bytes[id]
            case .byte:
                return parseByteToken(text).map { [$0] } ?? vocabulary.bytes[id]
            case .normal:
                if byteLevel { return ByteLevelMapping.decode(text) ?? vocabulary.bytes[id] }
                return replacingAll(vocabulary.bytes[id], spaceMark, with: [0x20])
            case .unused, .undefined:
                return []
            }
        }
    }

    /// The byte of a `<0xXX>` token.
    static func parseByteToken(_ text: String) -> UInt8? {
        let u = Array(text.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16)
    }

    /// llama.cpp's three `clean_spaces` passes: drop the space before `? ! . ,`; turn ` ' ` into `'`;
    /// drop the space before `'s 'm 're 've`.
    static func llamaCppCleanup(_ input: [UInt8]) -> [UInt8] {
        func pass(_ text: [UInt8], _ rule: (_ text: [UInt8], _ i: Int) -> (dropPrevious: Bool, skipNext: Bool)) -> [UInt8] {
            guard !text.isEmpty else { return text }
            var out: [UInt8] = [text[0]]
            var i = 1
            while i < text.count {
                let (dropPrevious, skipNext) = rule(text, i)
                if dropPrevious { out.removeLast() }
                out.append(text[i])
                i += skipNext ? 2 : 1
            }
            return out
        }
        let space: UInt8 = 0x20, quote: UInt8 = 0x27
        var text = pass(input) { t, i in
            (t[i - 1] == space && [0x3F, 0x21, 0x2E, 0x2C].contains(t[i]), false)
        }
        text = pass(text) { t, i in
            let hit = t[i] == quote && i + 1 < t.count && t[i - 1] == space && t[i + 1] == space
            return (hit, hit)
        }
        text = pass(text) { t, i in
            guard t[i - 1] == space, t[i] == quote, i + 1 < t.count else { return (false, false) }
            let a = t[i + 1]
            if a == 0x73 || a == 0x6D { return (true, false) }  // 's 'm
            guard a != 0x74 && a != 0x64, i + 2 < t.count else { return (false, false) }
            let b = t[i + 2]
            return ((a == 0x72 || a == 0x76) && b == 0x65, false)  // 're 've
        }
        return text
    }

    /// transformers' `clean_up_tokenization`.
    static func huggingFaceCleanup(_ input: [UInt8]) -> [UInt8] {
        var s = input
        for (from, to) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                           (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
            s = replacingAll(s, Array(from.utf8), with: Array(to.utf8))
        }
        return s
    }
}

/// Pre-tokenizes and merges the text fragments of one encode call, caching each distinct word.
struct ByteLevelSession {
    let bpe: ByteLevelBPE
    let preTokenizer: PreTokenizer
    let vocabulary: Vocabulary
    var scratch = ByteLevelBPE.Scratch()
    var cache: [[UInt8]: [Int]] = [:]
    var scalars: [UInt32] = []
    var offsets: [Int] = []

    init(bpe: ByteLevelBPE, preTokenizer: PreTokenizer, vocabulary: Vocabulary) {
        self.bpe = bpe
        self.preTokenizer = preTokenizer
        self.vocabulary = vocabulary
    }

    mutating func encode(_ text: UnsafeBufferPointer<UInt8>, into output: inout [Int]) {
        decodeScalars(text)
        let ends = scalars.withUnsafeBufferPointer { preTokenizer.split($0) }
        var start = 0
        var word: [Int] = []
        for end in ends {
            let range = offsets[start]..<offsets[end]
            start = end
            let key = Array(text[range])
            if let cached = cache[key] {
                output.append(contentsOf: cached)
                continue
            }
            word.removeAll(keepingCapacity: true)
            bpe.encodeWord(UnsafeBufferPointer(rebasing: text[range]), vocabulary: vocabulary, scratch: &scratch, output: &word)
            cache[key] = word
            output.append(contentsOf: word)
        }
    }

    /// Fills `scalars` and `offsets` (byte offset of each scalar, plus the end) from valid UTF-8.
    private mutating func decodeScalars(_ text: UnsafeBufferPointer<UInt8>) {
        scalars.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        var i = 0
        let n = text.count
        while i < n {
            offsets.append(i)
            let b0 = UInt32(text[i])
            if b0 < 0x80 {
                scalars.append(b0); i += 1
            } else if b0 < 0xE0, i + 1 < n {
                scalars.append((b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F)); i += 2
            } else if b0 < 0xF0, i + 2 < n {
                scalars.append((b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F)); i += 3
            } else if i + 3 < n {
                scalars.append((b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12 | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F)); i += 4
            } else {
                scalars.append(0xFFFD); i += 1  // unreachable for text that came from a String
            }
        }
        offsets.append(n)
    }
}

/// Replaces every occurrence of `target` in `bytes` (left to right, non-overlapping).
func replacingAll(_ bytes: [UInt8], _ target: [UInt8], with replacement: [UInt8]) -> [UInt8] {
    guard !target.isEmpty, bytes.count >= target.count else { return bytes }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        if bytes[i] == target[0], i + target.count <= bytes.count, bytes[i..<(i + target.count)].elementsEqual(target) {
            out.append(contentsOf: replacement)
            i += target.count
        } else {
            out.append(bytes[i])
            i += 1
        }
    }
    return out
}
