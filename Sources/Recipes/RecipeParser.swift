import Foundation
import Host
import Yams

/// Reads mergekit merge recipes (`mergekit-yaml` format) into `MergeRecipe`.
///
/// The YAML is composed into Yams nodes rather than decoded into Swift types, so every problem can be reported at
/// the line and column where it was written. Merge-method names are not checked here (the method registry lives in
/// another module); the planner checks them at `MergeRecipe.mergeMethodLocation`.
public enum RecipeParser {
    /// Reads and parses a recipe file; locations in errors and warnings name `file` as given.
    public static func parse(file: String) throws -> MergeRecipe {
        try parse(text: readText(file: file), file: file)
    }

    /// The UTF-8 text of a recipe file, with a `RecipeError` naming the file when it cannot be read.
    public static func readText(file: String) throws -> String {
        let data: Data
        do {
            data = try RegularFile.read(file, maxBytes: maxRecipeBytes)
        } catch let e as RegularFile.Failure {
            throw RecipeError.unreadableFile(file: file, reason: e.notFound ? "no such file" : e.reason)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RecipeError.unreadableFile(file: file, reason: "the file is not UTF-8 text")
        }
        return text
    }

    /// Largest recipe file read (a recipe is a few kilobytes; this only keeps a hostile file from filling memory).
    public static let maxRecipeBytes = 16 << 20

    /// Parses recipe text; `file` labels locations (a path or any name such as `<stdin>`).
    public static func parse(text: String, file: String) throws -> MergeRecipe {
        var decoder = RecipeDecoder(file: file, text: text)
        return try decoder.decode()
    }

    /// Top-level keys of mergekit's `MergeConfiguration` plus Crucible's `random_seed` and mergekit-multi's stage `name`.
    public static let knownTopLevelKeys = [
        "merge_method", "base_model", "models", "slices", "modules", "parameters", "dtype", "out_dtype",
        "tokenizer_source", "tokenizer", "chat_template", "random_seed", "name",
    ]
}

/// One decoding pass over one recipe; collects warnings as it goes.
private struct RecipeDecoder {
    let file: String
    let text: String
    let reader: NodeReader
    var warnings: [RecipeWarning] = []

    init(file: String, text: String) {
        self.file = file
        self.text = text
        self.reader = NodeReader(file: file)
    }

    private var parameterDecoder: ParameterDecoder { ParameterDecoder(reader: reader) }

    mutating func decode() throws -> MergeRecipe {
        let root = try reader.compose(text)
        let top = try reader.entries(of: root, what: "the recipe")

        var keyLocations: [String: SourceLocation] = [:]
        for entry in top.entries { keyLocations[entry.key] = entry.keyLocation }
        let unknown = top.unknownEntries(known: RecipeParser.knownTopLevelKeys)

        // merge_method (required).
        guard let methodEntry = top["merge_method"] else {
            // Point at the likely typo when there is one, else at the start of the recipe.
            let typo = unknown.first { $0.suggestion == "merge_method" }
            throw RecipeError.missingKey(typo?.entry.keyLocation ?? top.location, key: "merge_method",
                                         context: "the recipe", suggestion: typo?.entry.key)
        }
        guard let mergeMethod = reader.text(methodEntry.value), !mergeMethod.isEmpty else {
            throw RecipeError.wrongType(reader.location(methodEntry.value), key: "merge_method",
                                        expected: "a method name such as `linear`, `slerp` or `ties`",
                                        found: reader.describe(methodEntry.value))
        }

        for (entry, suggestion) in unknown {
            warnings.append(RecipeWarning(
                "unknown key `\(entry.key)` is ignored" + (suggestion.map { " (did you mean `\($0)`?)" } ?? ""), at: entry.keyLocation))
        }

        // Inputs: exactly one of models / slices (modules is mergekit's multi-module form, not supported yet).
        if let modules = top.given("modules") {
            throw RecipeError.unsupported(modules.keyLocation,
                                          feature: "`modules:` (per-module inputs for multi-module models such as vision-language models)",
                                          advice: "Crucible merges single-module causal LMs; use `models:` or `slices:`")
        }
        let modelsEntry = top["models"], slicesEntry = top["slices"]
        if let m = modelsEntry, let s = slicesEntry {
            let (first, second) = m.keyLocation.line <= s.keyLocation.line ? (m, s) : (s, m)
            throw RecipeError.conflictingInputs(second.keyLocation, first: first.key, firstAt: first.keyLocation, second: second.key)
        }
        if modelsEntry == nil && slicesEntry == nil {
            throw RecipeError.missingInputs(top.location)
        }

        let baseModel = try top.given("base_model").map { try reader.modelReference($0.value, key: "base_model", warnings: &warnings) }

        var models: [InputModel]?
        var slices: [Slice]?
        if let modelsEntry {
            var list = try inputModels(modelsEntry.value)
            // mergekit appends a base model that is not among `models:` as one more input with no parameters
            // (methods that use a base need its tensors; per-model parameters are not required for it).
            if let baseModel, !list.contains(where: { $0.model == baseModel }) {
                list.append(InputModel(model: baseModel, parameters: [:]))
            }
            models = list
        }
        if let slicesEntry {
            // Unlike `models:`, mergekit does not add the base to slice sources: the recipe must list it.
            slices = try self.slices(slicesEntry.value)
        }

        let parameters = try top["parameters"].map { try parameterDecoder.parameters($0.value, warnings: &warnings) } ?? [:]
        let dtype = try top.given("dtype").map { try reader.dtype($0) }
        let outDType = try top.given("out_dtype").map { try reader.dtype($0) }

        let tokenizer = try tokenizerSettings(block: top.given("tokenizer"), legacy: top.given("tokenizer_source"))

        var chatTemplate: String?
        if let entry = top.given("chat_template") {
            guard let template = reader.text(entry.value) else {
                throw RecipeError.wrongType(reader.location(entry.value), key: "chat_template",
                                            expected: "`auto`, a template name (`chatml`, `llama3`, …) or a Jinja template string",
                                            found: reader.describe(entry.value))
            }
            chatTemplate = template
        }

        var randomSeed: UInt64?
        if let entry = top.given("random_seed") {
            guard case .int(let seed)? = reader.resolve(entry.value) else {
                throw RecipeError.wrongType(reader.location(entry.value), key: "random_seed", expected: "a whole number",
                                            found: reader.describe(entry.value))
            }
            guard seed >= 0 else {
                throw RecipeError.invalidValue(reader.location(entry.value), key: "random_seed",
                                               reason: "expected a non-negative whole number, found \(seed)")
            }
            randomSeed = UInt64(seed)
        }

        return MergeRecipe(file: file, text: text, mergeMethod: mergeMethod, mergeMethodLocation: reader.location(methodEntry.value),
                           baseModel: baseModel, models: models, slices: slices, parameters: parameters, dtype: dtype, outDType: outDType,
                           tokenizer: tokenizer, chatTemplate: chatTemplate, randomSeed: randomSeed,
                           warnings: warnings.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) },
                           keyLocations: keyLocations)
    }

    // MARK: - Inputs

    private mutating func inputModels(_ node: Node) throws -> [InputModel] {
        guard case .sequence(let sequence) = node else {
            throw RecipeError.wrongType(reader.location(node), key: "models", expected: "a list of models (`- model: ORG/NAME`)",
                                        found: reader.describe(node))
        }
        guard sequence.count > 0 else {
            throw RecipeError.wrongType(reader.location(node), key: "models", expected: "a list of at least one model",
                                        found: "an empty list")
        }
        var result: [InputModel] = []
        for item in sequence {
            if case .scalar = item {
                // A bare `- org/name` entry: accepted as a model without parameters.
                result.append(InputModel(model: try reader.modelReference(item, key: "models", warnings: &warnings), parameters: [:]))
                continue
            }
            let entry = try reader.entries(of: item, what: "an entry of `models` (`- model: ORG/NAME`)")
            guard let modelEntry = entry["model"] else {
                throw RecipeError.missingKey(entry.location, key: "model", context: "this entry of `models`",
                                             suggestion: entry.unknownEntries(known: ["model"])
                                                 .first { $0.suggestion == "model" }?.entry.key)
            }
            warnUnknown(entry, known: ["model", "parameters"], context: "a `models` entry")
            let parameters = try entry["parameters"].map { try parameterDecoder.parameters($0.value, warnings: &warnings) } ?? [:]
            result.append(InputModel(model: try reader.modelReference(modelEntry.value, key: "model", warnings: &warnings),
                                     parameters: parameters))
        }
        return result
    }

    private mutating func slices(_ node: Node) throws -> [Slice] {
        guard case .sequence(let sequence) = node, sequence.count > 0 else {
            throw RecipeError.wrongType(reader.location(node), key: "slices",
                                        expected: "a non-empty list of slices (`- sources: [{model: …, layer_range: [0, 16]}]`)",
                                        found: reader.describe(node))
        }
        var result: [Slice] = []
        for item in sequence {
            let entry = try reader.entries(of: item, what: "a slice (`- sources: [...]`)")
            guard let sourcesEntry = entry["sources"] else {
                throw RecipeError.missingKey(entry.location, key: "sources", context: "this slice", suggestion: nil)
            }
            if let residual = entry["residual_weight"] {
                warnings.append(RecipeWarning("`residual_weight` is parsed but unused by mergekit; it is ignored",
                                              at: residual.keyLocation))
            }
            warnUnknown(entry, known: ["sources", "parameters", "base_model", "residual_weight"], context: "a slice")
            let sources = try sliceSources(sourcesEntry.value)
            let parameters = try entry["parameters"].map { try parameterDecoder.parameters($0.value, warnings: &warnings) } ?? [:]
            let base = try entry.given("base_model").map { try reader.modelReference($0.value, key: "base_model", warnings: &warnings) }
            result.append(Slice(sources: sources, parameters: parameters, baseModel: base, location: entry.location))
        }
        return result
    }

    private mutating func sliceSources(_ node: Node) throws -> [SliceSource] {
        guard case .sequence(let sequence) = node, sequence.count > 0 else {
            throw RecipeError.wrongType(reader.location(node), key: "sources",
                                        expected: "a non-empty list of `{model, layer_range}` sources", found: reader.describe(node))
        }
        var result: [SliceSource] = []
        for item in sequence {
            let entry = try reader.entries(of: item, what: "a slice source (`- model: …`)")
            guard let modelEntry = entry["model"] else {
                throw RecipeError.missingKey(entry.location, key: "model", context: "this slice source", suggestion: nil)
            }
            warnUnknown(entry, known: ["model", "layer_range", "parameters"], context: "a slice source")
            let model = try reader.modelReference(modelEntry.value, key: "model", warnings: &warnings)
            var range: Range<Int>?
            var rangeLocation: SourceLocation?
            if let rangeEntry = entry.given("layer_range") {
                range = try layerRange(rangeEntry.value)
                rangeLocation = reader.location(rangeEntry.value)
            }
            let parameters = try entry["parameters"].map { try parameterDecoder.parameters($0.value, warnings: &warnings) } ?? [:]
            result.append(SliceSource(model: model, layerRange: range, layerRangeLocation: rangeLocation, parameters: parameters))
        }
        // mergekit requires every source of a slice to span the same number of layers; catch it before any loading.
        if let first = result.first(where: { $0.layerRange != nil }), let firstRange = first.layerRange {
            for source in result {
                if let r = source.layerRange, r.count != firstRange.count, let at = source.layerRangeLocation {
                    throw RecipeError.invalidLayerRange(at,
                        reason: "[\(r.lowerBound), \(r.upperBound)] spans \(r.count) layers but the slice's first source "
                        + "spans \(firstRange.count) ([\(firstRange.lowerBound), \(firstRange.upperBound)]); all sources of a slice must "
                            + "span the same number of layers")
                }
            }
        }
        return result
    }

    /// `[start, end]`, half-open, two non-negative integers with start < end.
    private func layerRange(_ node: Node) throws -> Range<Int> {
        let location = reader.location(node)
        guard case .sequence(let sequence) = node, sequence.count == 2 else {
            throw RecipeError.invalidLayerRange(location,
                reason: "expected two integers `[start, end]` (end excluded), found \(reader.describe(node))"
                + { if case .sequence(let s) = node { return " of \(s.count) item\(s.count == 1 ? "" : "s")" } else { return "" } }())
        }
        var bounds: [Int] = []
        for item in sequence {
            guard case .int(let value)? = reader.resolve(item) else {
                throw RecipeError.invalidLayerRange(reader.location(item),
                                                    reason: "expected an integer layer index, found \(reader.describe(item))")
            }
            bounds.append(value)
        }
        if bounds[0] < 0 || bounds[1] < 0 {
            throw RecipeError.invalidLayerRange(location, reason: "layer indices cannot be negative, found [\(bounds[0]), \(bounds[1])]")
        }
        if bounds[0] >= bounds[1] {
            throw RecipeError.invalidLayerRange(location,
                reason: "start must be below end (the range is half-open, `[0, 16]` is layers 0…15), found [\(bounds[0]), \(bounds[1])]")
        }
        return bounds[0]..<bounds[1]
    }

    /// `tokenizer:` or the legacy `tokenizer_source:` (mergekit refuses both together).
    private mutating func tokenizerSettings(block: YAMLMapping.Entry?, legacy: YAMLMapping.Entry?) throws -> TokenizerSettings? {
        if let block, let legacy {
            let (first, second) = block.keyLocation.line <= legacy.keyLocation.line ? (block, legacy) : (legacy, block)
            throw RecipeError.invalidValue(second.keyLocation, key: second.key,
                reason: "`tokenizer` and `tokenizer_source` cannot both be given (the other is at line \(first.keyLocation.line)); "
                    + "write `tokenizer: {source: …}` alone")
        }
        if let legacy {
            return TokenizerSettings(source: try tokenizerSource(legacy.value), location: legacy.keyLocation)
        }
        guard let block else { return nil }
        let entry = try reader.entries(of: block.value, what: "`tokenizer` (`source`, `tokens`, `pad_to_multiple_of`)")
        warnUnknown(entry, known: ["source", "tokens", "pad_to_multiple_of"], context: "`tokenizer`")
        // A block without `source` means a union, as in mergekit.
        let source = try entry.given("source").map { try tokenizerSource($0.value) } ?? .union
        var pad: Int?
        if let p = entry.given("pad_to_multiple_of") {
            guard case .int(let n)? = reader.resolve(p.value), n >= 1, n <= 1 << 20 else {
                throw RecipeError.invalidValue(reader.location(p.value), key: "pad_to_multiple_of",
                                               reason: "expected a whole number from 1 to \(1 << 20), found \(reader.describe(p.value))")
            }
            pad = n
        }
        var tokens: [TokenSetting] = []
        if let t = entry.given("tokens") {
            let map = try reader.entries(of: t.value, what: "`tokens` (a mapping `TOKEN: {source: …, force: …}`)")
            for item in map.entries { tokens.append(try tokenSetting(item)) }
        }
        return TokenizerSettings(source: source, tokens: tokens, padToMultipleOf: pad, location: block.keyLocation)
    }

    /// One `tokens:` entry: `TOKEN: {source: MODEL | {kind: zero} | {kind: model_token, model, token_id | token}, force: BOOL}`.
    private mutating func tokenSetting(_ item: YAMLMapping.Entry) throws -> TokenSetting {
        let what = "the entry of token `\(item.key)` (`{source: …, force: …}`)"
        if case .null? = reader.resolve(item.value) {
            return TokenSetting(token: item.key, source: nil, force: false, location: item.keyLocation)
        }
        let entry = try reader.entries(of: item.value, what: what)
        warnUnknown(entry, known: ["source", "force"], context: "a `tokens` entry")
        var force = false
        if let f = entry.given("force") {
            guard case .bool(let b)? = reader.resolve(f.value) else {
                throw RecipeError.wrongType(reader.location(f.value), key: "force", expected: "true or false",
                                            found: reader.describe(f.value))
            }
            force = b
        }
        var source: TokenRowSource?
        if let s = entry.given("source") {
            if case .mapping = s.value {
                source = try tokenRowSource(s.value)
            } else {
                source = .model(try reader.modelReference(s.value, key: "source", warnings: &warnings))
            }
        }
        return TokenSetting(token: item.key, source: source, force: force, location: item.keyLocation)
    }

    /// `{kind: zero}` or `{kind: model_token, model: M, token_id: I}` / `{…, token: S}`.
    private mutating func tokenRowSource(_ node: Node) throws -> TokenRowSource {
        let entry = try reader.entries(of: node, what: "a token `source`")
        guard let kindEntry = entry["kind"], let kind = reader.text(kindEntry.value) else {
            // mergekit also reads `{model: M}` here as a model reference.
            if entry["model"] != nil, entry.entries.count == 1 {
                return .model(try reader.modelReference(node, key: "source", warnings: &warnings))
            }
            throw RecipeError.missingKey(entry.location, key: "kind", context: "this token `source`", suggestion: nil)
        }
        switch kind {
        case "zero":
            warnUnknown(entry, known: ["kind"], context: "a `{kind: zero}` source")
            return .zero
        case "model_token":
            warnUnknown(entry, known: ["kind", "model", "token_id", "token"], context: "a `{kind: model_token}` source")
            guard let m = entry.given("model") else {
                throw RecipeError.missingKey(entry.location, key: "model", context: "this `model_token` source", suggestion: nil)
            }
            let model = try reader.modelReference(m.value, key: "model", warnings: &warnings)
            switch (entry.given("token_id"), entry.given("token")) {
            case let (id?, nil):
                guard case .int(let i)? = reader.resolve(id.value), i >= 0 else {
                    throw RecipeError.invalidValue(reader.location(id.value), key: "token_id",
                                                   reason: "expected a non-negative token id, found \(reader.describe(id.value))")
                }
                return .modelTokenID(model, i)
            case let (nil, token?):
                guard let text = reader.rawText(token.value) else {
                    throw RecipeError.wrongType(reader.location(token.value), key: "token", expected: "a token string",
                                                found: reader.describe(token.value))
                }
                return .modelToken(model, text)
            default:
                throw RecipeError.invalidValue(entry.location, key: "model_token",
                                               reason: "give exactly one of `token_id` (a row of the model) or `token` (a token string)")
            }
        default:
            throw RecipeError.invalidValue(reader.location(kindEntry.value), key: "kind",
                                           reason: "unknown token source kind `\(kind)`: expected `zero` or `model_token`")
        }
    }

    private mutating func tokenizerSource(_ node: Node) throws -> TokenizerSource {
        if let name = reader.text(node) {
            switch name {
            case "base":
                return .base
            case "union":
                return .union
            default:
                if name.hasPrefix("model:") {
                    // Pre-July-2024 mergekit spelled a model source `model:PATH`; today it is just `PATH`.
                    warnings.append(RecipeWarning("`tokenizer_source: model:…` is the legacy spelling; write the model reference alone",
                                                  at: reader.location(node)))
                    let raw = String(name.dropFirst("model:".count)).trimmingCharacters(in: .whitespaces)
                    return .model(ModelReference(raw: raw, location: reader.location(node)))
                }
            }
        }
        return .model(try reader.modelReference(node, key: "tokenizer_source", warnings: &warnings))
    }

    private mutating func warnUnknown(_ mapping: YAMLMapping, known: [String], context: String) {
        warnings += reader.unknownKeyWarnings(mapping, known: known, context: context)
    }
}
