/// Ids back to text, following llama.cpp's `token_to_piece` and `detokenize`: every token has a
/// precomputed piece of bytes, pieces are joined, then decoded as UTF-8 once.
extension BPETokenizer {
    public func pieceBytes(_ id: Int) -> [UInt8] {
        pieces.indices.contains(id) ? pieces[id] : []
    }

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

    static func decodedPieces(_ vocabulary: Vocabulary, _ algorithm: MergeAlgorithm) -> [[UInt8]] {
        let byteLevel: Bool
        if case let .byteLevel(bpe, _) = algorithm { byteLevel = !bpe.rawUTF8 } else { byteLevel = false }
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
