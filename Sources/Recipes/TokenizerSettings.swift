/// Where the output vocabulary comes from (`tokenizer_source:` or `tokenizer: {source:}`).
public enum TokenizerSource: Sendable, Equatable {
    /// The base model's tokenizer, stripped to its config's `vocab_size`.
    case base
    /// The base's tokens, then every other parent's tokens the base lacks (docs/tokenizer-merging.md).
    case union
    /// That model's tokenizer as stored; it need not be one of the merged models.
    case model(ModelReference)
}

/// The `tokenizer:` block (or the legacy `tokenizer_source:` key, which sets only `source`): the output vocabulary
/// and how the embedding rows of its tokens are filled.
public struct TokenizerSettings: Sendable, Equatable {
    public let source: TokenizerSource
    /// `tokens:` entries, in recipe order.
    public let tokens: [TokenSetting]
    /// `pad_to_multiple_of:`: the embedding row count (and config `vocab_size`) is rounded up to a multiple of it.
    public let padToMultipleOf: Int?
    /// Where the `tokenizer` or `tokenizer_source` key was written.
    public let location: SourceLocation

    public init(source: TokenizerSource, tokens: [TokenSetting] = [], padToMultipleOf: Int? = nil, location: SourceLocation) {
        self.source = source
        self.tokens = tokens
        self.padToMultipleOf = padToMultipleOf
        self.location = location
    }
}

/// One entry of `tokenizer.tokens`: where the row of `token` comes from for models that lack it (or for every
/// model, with `force`).
public struct TokenSetting: Sendable, Equatable {
    public let token: String
    /// nil when the entry gives no `source` (valid only while no model needs a default row for the token).
    public let source: TokenRowSource?
    public let force: Bool
    /// Where the token's key was written.
    public let location: SourceLocation

    public init(token: String, source: TokenRowSource?, force: Bool, location: SourceLocation) {
        self.token = token
        self.source = source
        self.force = force
        self.location = location
    }
}

/// A `tokens:` entry's `source`.
public enum TokenRowSource: Sendable, Equatable {
    /// `{kind: zero}`: a row of zeros.
    case zero
    /// A model reference: that model's own row for the token.
    case model(ModelReference)
    /// `{kind: model_token, model: M, token_id: I}`: row I of M's stored tensor.
    case modelTokenID(ModelReference, Int)
    /// `{kind: model_token, model: M, token: S}`: the row of token S in M's own vocabulary.
    case modelToken(ModelReference, String)

    /// The model the row is read from (nil for zeros).
    public var model: ModelReference? {
        switch self {
        case .zero: return nil
        case let .model(m), let .modelTokenID(m, _), let .modelToken(m, _): return m
        }
    }
}
