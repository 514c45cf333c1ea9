/// What a vocabulary entry is, with GGUF's `tokenizer.ggml.token_type` numbering.
public enum TokenKind: Int, Sendable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    /// BOS, EOS, chat markers: matched in text only when special-token parsing is on.
    case control = 3
    /// Added tokens that are not special: always matched in text, always decoded as written.
    case userDefined = 4
    case unused = 5
    /// `<0xXX>` byte-fallback tokens of SentencePiece vocabularies.
    case byte = 6
}

/// The token strings of a model with their kinds and (SentencePiece) scores, indexed by id.
struct Vocabulary: Sendable {
    let tokens: [String]
    let bytes: [[UInt8]]
    let kinds: [TokenKind]
    let scores: [Float]
    let lookup: TokenLookup

    init(tokens: [String], kinds: [TokenKind], scores: [Float]) {
        self.tokens = tokens
        self.bytes = tokens.map { Array($0.utf8) }
        self.kinds = kinds
        self.scores = scores
        self.lookup = TokenLookup(bytes)
    }

    var count: Int { tokens.count }

    func id(of text: String) -> Int? { lookup.find(text) }

    /// Ids of the tokens that are split out of the text before the model runs (llama.cpp's special
    /// token cache): control, user-defined and unknown tokens, longest first.
    func specialMatchOrder() -> [Int] {
        let ids = tokens.indices.filter {
            (kinds[$0] == .control || kinds[$0] == .userDefined || kinds[$0] == .unknown) && !bytes[$0].isEmpty
        }
        return ids.sorted { a, b in
            bytes[a].count != bytes[b].count ? bytes[a].count > bytes[b].count : a < b
        }
    }
}
