import Foundation

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
    let composesNFC: Bool
    private let specialOrder: [Int]
    /// Decoded bytes of every token (special tokens as their text).
    let pieces: [[UInt8]]

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
        composesNFC = setup.composesNFC
        specialOrder = setup.vocabulary.specialMatchOrder()
        pieces = Self.decodedPieces(setup.vocabulary, setup.algorithm)
    }

    /// The split rules of a byte-level vocabulary; nil for SentencePiece-style ones.
    public var preTokenizer: PreTokenizer? {
        if case let .byteLevel(_, rules) = algorithm { return rules }
        return nil
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
        let bytes = Array((composesNFC ? text.precomposedStringWithCanonicalMapping : text).utf8)
        bytes.withUnsafeBufferPointer { buffer in
            let fragments = partition(buffer, parseSpecial: parseSpecial)
            switch algorithm {
            case let .byteLevel(bpe, preTokenizer):
                var session = ByteLevelSession(bpe: bpe, preTokenizer: preTokenizer, vocabulary: vocabulary)
                var escaped: [UInt8] = []
                for fragment in fragments {
                    switch fragment {
                    case let .text(range) where bpe.rawUTF8:
                        // Gemma 4: spaces are written `▁` before splitting and merging.
                        escaped.removeAll(keepingCapacity: true)
                        for b in buffer[range] {
                            if b == 0x20 { escaped.append(contentsOf: Self.spaceMark) } else { escaped.append(b) }
                        }
                        escaped.withUnsafeBufferPointer { session.encode($0, into: &output) }
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

}
