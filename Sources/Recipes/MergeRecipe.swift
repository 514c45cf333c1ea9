import Numerics

/// A place in a recipe file, for error messages: `recipe.yml:12:5`.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let line: Int      // 1-based
    public let column: Int    // 1-based
    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }
    public var description: String { "\(file):\(line):\(column)" }
}

/// A parameter as written in a recipe, before it is evaluated for one tensor (mergekit's `ParameterSetting`).
public indirect enum ParameterSetting: Sendable, Equatable {
    /// `weight: 0.5`, `normalize: true`, `mode: foo`.
    case scalar(ParameterValue)
    /// `t: [0, 0.5, 1]`: numbers (bools count as numbers), linearly interpolated over the layer position.
    case gradient([Double])
    /// A list containing a string: a step lookup `v[floor(t·(n−1))]`.
    case steps([ParameterValue])
    /// `[{filter: self_attn, value: X}, {value: Y}]`: the first entry whose filter is absent, `*`, or a substring
    /// of the tensor name applies; if none does, this level yields nothing and lookup falls through.
    case conditional([ConditionalSetting])
}

public struct ConditionalSetting: Sendable, Equatable {
    public let filter: String?
    public let value: ParameterSetting
    public let location: SourceLocation
    public init(filter: String?, value: ParameterSetting, location: SourceLocation) {
        self.filter = filter
        self.value = value
        self.location = location
    }
}

/// A parameter setting with where it was written.
public struct LocatedSetting: Sendable, Equatable {
    public let setting: ParameterSetting
    public let location: SourceLocation
    public init(_ setting: ParameterSetting, at location: SourceLocation) {
        self.setting = setting
        self.location = location
    }
}

/// A model as a recipe names it: a local path or a hub id such as `org/name` (optionally `@revision`).
public struct ModelReference: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Exactly as written in the recipe.
    public let raw: String
    public let location: SourceLocation
    public init(raw: String, location: SourceLocation) {
        self.raw = raw
        self.location = location
    }
    public var description: String { raw }
    public static func == (a: ModelReference, b: ModelReference) -> Bool { a.raw == b.raw }
    public func hash(into h: inout Hasher) { h.combine(raw) }
}

/// One entry of `models:`.
public struct InputModel: Sendable, Equatable {
    public let model: ModelReference
    public let parameters: [String: LocatedSetting]
    public init(model: ModelReference, parameters: [String: LocatedSetting]) {
        self.model = model
        self.parameters = parameters
    }
}

/// One entry of a slice's `sources:`.
public struct SliceSource: Sendable, Equatable {
    public let model: ModelReference
    /// Half-open `[start, end)`; nil when the recipe leaves it out (then the model's whole depth).
    public let layerRange: Range<Int>?
    public let layerRangeLocation: SourceLocation?
    public let parameters: [String: LocatedSetting]
    public init(model: ModelReference, layerRange: Range<Int>?, layerRangeLocation: SourceLocation?, parameters: [String: LocatedSetting]) {
        self.model = model
        self.layerRange = layerRange
        self.layerRangeLocation = layerRangeLocation
        self.parameters = parameters
    }
}

/// One entry of `slices:`.
public struct Slice: Sendable, Equatable {
    public let sources: [SliceSource]
    public let parameters: [String: LocatedSetting]
    /// A slice-level `base_model` overrides the recipe's for this slice.
    public let baseModel: ModelReference?
    public let location: SourceLocation
    public init(sources: [SliceSource], parameters: [String: LocatedSetting], baseModel: ModelReference?, location: SourceLocation) {
        self.sources = sources
        self.parameters = parameters
        self.baseModel = baseModel
        self.location = location
    }
}

/// A warning about a recipe that still merges (a legacy key, a quirk handled sensibly).
public struct RecipeWarning: Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public let location: SourceLocation
    public init(_ message: String, at location: SourceLocation) {
        self.message = message
        self.location = location
    }
    public var description: String { "\(location): warning: \(message)" }
}

/// A mergekit merge recipe (`mergekit-yaml` format), as written.
public struct MergeRecipe: Sendable {
    /// The recipe file's path (or a label for recipes parsed from text).
    public let file: String
    /// The verbatim recipe text (copied into the output and the model card); a stage of a multi-stage recipe holds its
    /// own document.
    public internal(set) var text: String
    public let mergeMethod: String
    public let mergeMethodLocation: SourceLocation
    public let baseModel: ModelReference?
    /// `models:` entries, or nil when the recipe uses `slices:`.
    public let models: [InputModel]?
    /// `slices:` entries, or nil when the recipe uses `models:`.
    public let slices: [Slice]?
    /// Top-level `parameters:` (lowest precedence).
    public let parameters: [String: LocatedSetting]
    public let dtype: DType?
    public let outDType: DType?
    /// The output vocabulary's source (`tokenizer_source:` or `tokenizer.source`); nil when the recipe sets neither.
    public var tokenizerSource: TokenizerSource? { tokenizer?.source }
    /// `tokenizer:` (or `tokenizer_source:` alone): vocabulary merging; nil when the recipe sets neither key.
    public let tokenizer: TokenizerSettings?
    public let chatTemplate: String?
    /// `random_seed:` if given (the CLI's `--seed` overrides it).
    public let randomSeed: UInt64?
    public let warnings: [RecipeWarning]
    /// Where the top-level key was written, for messages (`merge_method`, `base_model`, `models`, `slices`…).
    public let keyLocations: [String: SourceLocation]

    public init(file: String, text: String, mergeMethod: String, mergeMethodLocation: SourceLocation, baseModel: ModelReference?,
                models: [InputModel]?, slices: [Slice]?, parameters: [String: LocatedSetting], dtype: DType?, outDType: DType?,
                tokenizer: TokenizerSettings?, chatTemplate: String?, randomSeed: UInt64?, warnings: [RecipeWarning],
                keyLocations: [String: SourceLocation]) {
        self.file = file
        self.text = text
        self.mergeMethod = mergeMethod
        self.mergeMethodLocation = mergeMethodLocation
        self.baseModel = baseModel
        self.models = models
        self.slices = slices
        self.parameters = parameters
        self.dtype = dtype
        self.outDType = outDType
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.randomSeed = randomSeed
        self.warnings = warnings
        self.keyLocations = keyLocations
    }
}
