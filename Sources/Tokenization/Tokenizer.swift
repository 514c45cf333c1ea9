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
    /// The bytes a token stands for in text (llama.cpp's `token_to_piece`): byte-level spellings undone,
    /// SentencePiece's `▁` as a space, `<0xNN>` as its byte; control tokens as their text; empty for ids
    /// outside the vocabulary. Pieces of consecutive tokens concatenate to the decoded text's bytes (before
    /// any clean-up of spaces).
    func pieceBytes(_ id: Int) -> [UInt8]
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
    /// Compose the text to Unicode NFC before tokenizing (tokenizer.json `NFC` normalizer).
    var composesNFC = false
}
