import Foundation

/// Why a recipe could not be read, always with the place to look: `recipe.yml:12:5: error: …`.
///
/// Every case names the recipe file and, except for whole-file problems, the line and column of the
/// offending node, so a user can jump straight to it. Descriptions say what was expected, not only what was wrong.
public enum RecipeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read or is not UTF-8 text.
    case unreadableFile(file: String, reason: String)
    /// The text is not valid YAML (scanner/parser/composer error from libyaml).
    case malformedYAML(SourceLocation, problem: String)
    /// The file holds no YAML document at all.
    case emptyRecipe(file: String)
    /// A node that must be a mapping is something else; `what` says which node (`the recipe`, `a slice`).
    case notAMapping(SourceLocation, what: String, found: String)
    /// A required key is absent from the mapping at this location. `suggestion` names a near-miss key that was written instead.
    case missingKey(SourceLocation, key: String, context: String, suggestion: String?)
    /// The same key appears twice in one mapping (YAML loaders silently keep the last one; here it is an error).
    case duplicateKey(SourceLocation, key: String, firstAt: SourceLocation)
    /// A key's value has the wrong shape, e.g. `expected a list of models, found text`.
    case wrongType(SourceLocation, key: String, expected: String, found: String)
    /// `models:` and `slices:` were both given (the location is the second one).
    case conflictingInputs(SourceLocation, first: String, firstAt: SourceLocation, second: String)
    /// Neither `models:` nor `slices:` was given.
    case missingInputs(SourceLocation)
    /// A feature mergekit has but Crucible does not yet support (`modules:`, LoRA).
    case unsupported(SourceLocation, feature: String, advice: String)
    /// A `layer_range` that is not two integers `[start, end)` with `0 <= start < end`, or whose length disagrees within a slice.
    case invalidLayerRange(SourceLocation, reason: String)
    /// `dtype` / `out_dtype` is not a floating-point dtype name Crucible knows.
    case unknownDType(SourceLocation, key: String, value: String)
    /// A parameter value of a form mergekit does not accept (empty list, nested list, mapping without `value`…).
    case invalidParameter(SourceLocation, name: String, reason: String)
    /// Any other value that is out of range or malformed (e.g. a negative `random_seed`).
    case invalidValue(SourceLocation, key: String, reason: String)
    /// A model reference that names neither an existing local model nor a cached Hugging Face snapshot.
    case modelNotFound(SourceLocation, reference: String, searched: [String], hint: String)
    /// A model reference that exists but is not something Crucible can load (e.g. a `.bin` file).
    case invalidModel(SourceLocation, reference: String, reason: String)

    /// The recipe location this error points at (nil for whole-file problems).
    public var location: SourceLocation? {
        switch self {
        case .unreadableFile, .emptyRecipe: return nil
        case let .malformedYAML(l, _), let .notAMapping(l, _, _), let .missingKey(l, _, _, _), let .duplicateKey(l, _, _),
             let .wrongType(l, _, _, _), let .conflictingInputs(l, _, _, _), let .missingInputs(l), let .unsupported(l, _, _),
             let .invalidLayerRange(l, _), let .unknownDType(l, _, _), let .invalidParameter(l, _, _), let .invalidValue(l, _, _),
             let .modelNotFound(l, _, _, _), let .invalidModel(l, _, _):
            return l
        }
    }

    /// The recipe file this error is about.
    public var file: String {
        switch self {
        case let .unreadableFile(file, _), let .emptyRecipe(file): return file
        default: return location?.file ?? ""
        }
    }

    /// The explanation without the `FILE:LINE:COL: error:` prefix.
    public var reason: String {
        switch self {
        case let .unreadableFile(_, reason):
            return "cannot read the recipe: \(reason)"
        case let .malformedYAML(_, problem):
            return "the recipe is not valid YAML: \(problem)"
        case .emptyRecipe:
            return "the recipe is empty: expected a mapping with at least `merge_method` and `models` or `slices`"
        case let .notAMapping(_, what, found):
            return "expected \(what) to be a mapping of `key: value` lines, found \(found)"
        case let .missingKey(_, key, context, suggestion):
            var s = "\(context) has no `\(key)` key"
            if let suggestion { s += " (found `\(suggestion)`: did you mean `\(key)`?)" }
            if key == "merge_method" { s += "; expected e.g. `merge_method: linear`" }
            return s
        case let .duplicateKey(_, key, firstAt):
            return "`\(key)` is given twice (first at line \(firstAt.line), column \(firstAt.column)); keep only one"
        case let .wrongType(_, key, expected, found):
            return "`\(key)`: expected \(expected), found \(found)"
        case let .conflictingInputs(_, first, firstAt, second):
            return "both `\(first)` (line \(firstAt.line)) and `\(second)` are given: a recipe uses exactly one of `models` or `slices`"
        case .missingInputs:
            return "the recipe has neither `models` nor `slices`: expected a list of input models (`models: [{model: ORG/NAME}, …]`) "
                + "or of layer slices (`slices: [{sources: [{model: …, layer_range: [0, 32]}]}]`)"
        case let .unsupported(_, feature, advice):
            return "\(feature) is not supported yet; \(advice)"
        case let .invalidLayerRange(_, reason):
            return "invalid `layer_range`: \(reason)"
        case let .unknownDType(_, key, value):
            return "`\(key)`: unknown dtype `\(value)`: expected float32, float16 or bfloat16 (a `torch.` prefix is allowed; float64 also "
                + "works)"
        case let .invalidParameter(_, name, reason):
            return "parameter `\(name)`: \(reason)"
        case let .invalidValue(_, key, reason):
            return "`\(key)`: \(reason)"
        case let .modelNotFound(_, reference, searched, hint):
            var s = "model `\(reference)` not found"
            if !searched.isEmpty { s += "; looked in: " + searched.joined(separator: ", ") }
            return s + ". " + hint
        case let .invalidModel(_, reference, reason):
            return "model `\(reference)`: \(reason)"
        }
    }

    public var description: String {
        if let location { return "\(location): error: \(reason)" }
        return "\(file): error: \(reason)"
    }
}

extension RecipeError: LocalizedError {
    /// So `error.localizedDescription` shows the located message too.
    public var errorDescription: String? { description }
}
