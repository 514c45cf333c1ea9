import Foundation
import Numerics
import Yams

/// How the router (gate) rows of a FrankenMoE are made (docs/moe.md, "Gate modes").
public enum MoEGateMode: String, Sendable, CaseIterable {
    /// The residual stream entering each layer at the last prompt token, averaged over prompts (mergekit's default).
    case hidden
    /// As `hidden`, but averaged over every position of the left-padded prompt batch, padding included.
    case hiddenAverage = "hidden_avg"
    /// The token embeddings of the prompts, summed: one row for every layer.
    case cheapEmbed = "cheap_embed"
    /// Standard normal rows (seeded), not normalised.
    case random
    /// Uniform in ±1/√hidden (the `nn.Linear` default), seeded.
    case uniformRandom = "uniform_random"
    /// Crucible's own mode: what the router really reads, the `post_attention_layernorm` output of each layer at the
    /// last prompt token, averaged over prompts (mergekit's `hidden` reads the residual stream entering the layer).
    case routerInput = "router_input"

    /// Whether the rows come from prompts (and so every routed expert needs `positive_prompts`).
    public var usesPrompts: Bool {
        switch self {
        case .hidden, .hiddenAverage, .cheapEmbed, .routerInput: return true
        case .random, .uniformRandom: return false
        }
    }

    /// Whether the base model has to be run (as opposed to reading embeddings or drawing numbers).
    public var runsModel: Bool { self == .hidden || self == .hiddenAverage || self == .routerInput }

    /// The spellings a recipe may use: every mode's name, plus mergekit's alias `hidden_last` for `hidden`.
    static func named(_ name: String) -> MoEGateMode? {
        if name == "hidden_last" { return .hidden }
        return MoEGateMode(rawValue: name)
    }
}

/// One expert of a MoE recipe: whose MLP it is and which prompts should route to it.
public struct MoEExpert: Sendable, Equatable {
    public let sourceModel: ModelReference
    public let positivePrompts: [String]
    public let negativePrompts: [String]
    /// Standard deviation of Gaussian noise added to each of this expert's MLP weights.
    public let noiseScale: Double?
    /// Factor applied to this expert's `down_proj` (its contribution to the residual stream).
    public let residualScale: Double?
    /// Where the entry starts, for messages.
    public let location: SourceLocation

    public init(sourceModel: ModelReference, positivePrompts: [String], negativePrompts: [String], noiseScale: Double?,
                residualScale: Double?, location: SourceLocation) {
        self.sourceModel = sourceModel
        self.positivePrompts = positivePrompts
        self.negativePrompts = negativePrompts
        self.noiseScale = noiseScale
        self.residualScale = residualScale
        self.location = location
    }
}

/// A mergekit-moe recipe (`mergekit-moe CONFIG OUT`), as written.
public struct MoERecipe: Sendable {
    public let file: String
    /// The verbatim text (copied into the output as `mergekit_moe_config.yml` and into the model card).
    public let text: String
    /// Source of embeddings, attention, norms, head, config and tokenizer.
    public let baseModel: ModelReference
    /// `architecture:`: a case-insensitive prefix of an output architecture's name (`mixtral`, `qwen`, `qwen3`, `deepseek`).
    public let architecture: String?
    public let gateMode: MoEGateMode
    /// Output dtype (default: the base's).
    public let dtype: DType?
    public let expertsPerToken: Int
    public let experts: [MoEExpert]
    public let sharedExperts: [MoEExpert]
    /// Crucible extension: the seed of `random`/`uniform_random` gates and `noise_scale` (`--seed` overrides it).
    public let randomSeed: UInt64?
    public let warnings: [RecipeWarning]
    /// Where each top-level key was written.
    public let keyLocations: [String: SourceLocation]

    /// Every model the recipe names, each once: the base, the experts, the shared experts.
    public var referencedModels: [ModelReference] {
        var result: [ModelReference] = []
        for ref in [baseModel] + experts.map(\.sourceModel) + sharedExperts.map(\.sourceModel) where !result.contains(ref) {
            result.append(ref)
        }
        return result
    }

    /// The location of a top-level key, or of the recipe's start.
    public func location(of key: String) -> SourceLocation {
        keyLocations[key] ?? baseModel.location
    }
}

/// Reads mergekit-moe recipes into `MoERecipe`, with every problem reported at its line and column.
public enum MoERecipeParser {
    public static let knownTopLevelKeys = [
        "base_model", "architecture", "gate_mode", "dtype", "experts_per_token", "experts", "shared_experts", "random_seed",
    ]
    static let knownExpertKeys = ["source_model", "positive_prompts", "negative_prompts", "noise_scale", "residual_scale"]

    public static func parse(file: String) throws -> MoERecipe {
        let text = try RecipeParser.readText(file: file)
        return try parse(text: text, file: file)
    }

    /// Whether YAML text is a MoE recipe rather than a merge recipe: a mapping with a top-level `experts` key.
    public static func isMoERecipe(text: String) -> Bool {
        // Too deep to compose safely: not classified here; the merge-recipe parser reports the depth at its line.
        guard YAMLDepthLimit.firstViolation(in: text) == nil,
              let root = try? Yams.compose(yaml: text), case .mapping(let mapping) = root else { return false }
        return mapping.keys.contains { $0.string == "experts" }
    }

    public static func parse(text: String, file: String) throws -> MoERecipe {
        let reader = NodeReader(file: file)
        var warnings: [RecipeWarning] = []
        let root = try reader.compose(text)
        let top = try reader.entries(of: root, what: "the MoE recipe")
        var keyLocations: [String: SourceLocation] = [:]
        for entry in top.entries { keyLocations[entry.key] = entry.keyLocation }
        for (entry, suggestion) in top.unknownEntries(known: knownTopLevelKeys) {
            if entry.key == "merge_method" || entry.key == "models" || entry.key == "slices" {
                throw RecipeError.invalidValue(entry.keyLocation, key: entry.key,
                    reason: "this is a merge recipe key, but the recipe has `experts`: a MoE recipe lists `base_model` and `experts` (run "
                        + "merge recipes with `crucible merge`)")
            }
            warnings.append(RecipeWarning("unknown key `\(entry.key)` is ignored" + (suggestion.map { " (did you mean `\($0)`?)" } ?? ""),
                                          at: entry.keyLocation))
        }

        guard let baseEntry = top.given("base_model") else {
            throw RecipeError.missingKey(top.location, key: "base_model", context: "the MoE recipe",
                                         suggestion: top.unknownEntries(known: knownTopLevelKeys)
                                             .first { $0.suggestion == "base_model" }?.entry.key)
        }
        let baseModel = try reader.modelReference(baseEntry.value, key: "base_model", warnings: &warnings)

        var gateMode = MoEGateMode.hidden
        if let entry = top.given("gate_mode") {
            guard let name = reader.text(entry.value), let mode = MoEGateMode.named(name) else {
                throw RecipeError.invalidValue(reader.location(entry.value), key: "gate_mode",
                    reason: "expected one of \(MoEGateMode.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")), found "
                        + "\(reader.describe(entry.value))")
            }
            gateMode = mode
        }

        var architecture: String?
        if let entry = top.given("architecture") {
            guard let name = reader.text(entry.value), !name.isEmpty else {
                throw RecipeError.wrongType(reader.location(entry.value), key: "architecture",
                                            expected: "an output architecture name (`mixtral`, `qwen`, `qwen3` or `deepseek`)",
                                            found: reader.describe(entry.value))
            }
            architecture = name
        }

        let dtype = try top.given("dtype").map { try reader.dtype($0) }

        var expertsPerToken = 2
        var perTokenLocation = top.location
        if let entry = top.given("experts_per_token") {
            perTokenLocation = reader.location(entry.value)
            guard case .int(let k)? = reader.resolve(entry.value) else {
                throw RecipeError.wrongType(perTokenLocation, key: "experts_per_token", expected: "a whole number",
                                            found: reader.describe(entry.value))
            }
            guard k >= 1 else {
                throw RecipeError.invalidValue(perTokenLocation, key: "experts_per_token", reason: "must be at least 1, found \(k)")
            }
            expertsPerToken = k
        }

        guard let expertsEntry = top["experts"] else {
            throw RecipeError.missingKey(top.location, key: "experts", context: "the MoE recipe", suggestion: nil)
        }
        let experts = try expertList(expertsEntry, reader: reader, key: "experts", warnings: &warnings)
        guard !experts.isEmpty else {
            throw RecipeError.wrongType(reader.location(expertsEntry.value), key: "experts",
                                        expected: "a list of at least one expert (`- source_model: …`)", found: "an empty list")
        }
        let sharedExperts = try top.given("shared_experts").map {
            try expertList($0, reader: reader, key: "shared_experts", warnings: &warnings)
        } ?? []

        if experts.count < expertsPerToken {
            throw RecipeError.invalidValue(perTokenLocation, key: "experts_per_token",
                reason: "\(expertsPerToken) experts per token, but the recipe lists only \(experts.count) "
                    + "expert\(experts.count == 1 ? "" : "s"); list at least \(expertsPerToken) or lower experts_per_token")
        }

        if gateMode.usesPrompts {
            for (i, expert) in experts.enumerated() where expert.positivePrompts.isEmpty {
                throw RecipeError.invalidValue(expert.location, key: "positive_prompts",
                    reason: "expert \(i) (\(expert.sourceModel)) has no positive_prompts, but gate_mode `\(gateMode.rawValue)` builds "
                        + "each expert's router row from its prompts: give it one or more example prompts that should route to it (or use "
                            + "gate_mode `random`)")
            }
            // mergekit refuses identical prompt sets: every router row would be the same and routing would be arbitrary.
            if experts.count > 1, experts.dropFirst().allSatisfy({ $0.positivePrompts == experts[0].positivePrompts
                && $0.negativePrompts == experts[0].negativePrompts }) {
                throw RecipeError.invalidValue(expertsEntry.keyLocation, key: "experts",
                    reason: "every expert has the same positive and negative prompts, so every router row would be identical and routing "
                        + "arbitrary; give each expert prompts that reflect what should be routed to it")
            }
        }
        if !sharedExperts.isEmpty, gateMode.usesPrompts {
            let withPrompts = sharedExperts.filter { !$0.positivePrompts.isEmpty }.count
            if withPrompts != 0 && withPrompts != sharedExperts.count {
                throw RecipeError.invalidValue(keyLocations["shared_experts"] ?? top.location, key: "shared_experts",
                                               reason: "give prompts to every shared expert or to none, not a mix")
            }
        }

        var randomSeed: UInt64?
        if let entry = top.given("random_seed") {
            guard case .int(let seed)? = reader.resolve(entry.value), seed >= 0 else {
                throw RecipeError.wrongType(reader.location(entry.value), key: "random_seed", expected: "a non-negative whole number",
                                            found: reader.describe(entry.value))
            }
            randomSeed = UInt64(seed)
        }

        return MoERecipe(file: file, text: text, baseModel: baseModel, architecture: architecture, gateMode: gateMode, dtype: dtype,
                         expertsPerToken: expertsPerToken, experts: experts, sharedExperts: sharedExperts, randomSeed: randomSeed,
                         warnings: warnings.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) },
                         keyLocations: keyLocations)
    }

    private static func expertList(_ entry: YAMLMapping.Entry, reader: NodeReader, key: String,
                                   warnings: inout [RecipeWarning]) throws -> [MoEExpert] {
        guard case .sequence(let items) = entry.value else {
            throw RecipeError.wrongType(reader.location(entry.value), key: key,
                                        expected: "a list of experts (`- source_model: ORG/NAME`)", found: reader.describe(entry.value))
        }
        return try items.map { item in
            let map = try reader.entries(of: item, what: "an entry of `\(key)` (`- source_model: …`)")
            guard let source = map["source_model"] else {
                throw RecipeError.missingKey(map.location, key: "source_model", context: "this entry of `\(key)`",
                                             suggestion: map.unknownEntries(known: knownExpertKeys)
                                                 .first { $0.suggestion == "source_model" }?.entry.key)
            }
            warnings += reader.unknownKeyWarnings(map, known: knownExpertKeys, context: "an entry of `\(key)`")
            let model = try reader.modelReference(source.value, key: "source_model", warnings: &warnings)
            let positive = try prompts(map.given("positive_prompts"), reader: reader)
            let negative = try prompts(map.given("negative_prompts"), reader: reader)
            let noise = try number(map.given("noise_scale"), reader: reader, nonNegative: true)
            let residual = try number(map.given("residual_scale"), reader: reader, nonNegative: false)
            return MoEExpert(sourceModel: model, positivePrompts: positive, negativePrompts: negative, noiseScale: noise,
                             residualScale: residual, location: map.location)
        }
    }

    private static func prompts(_ entry: YAMLMapping.Entry?, reader: NodeReader) throws -> [String] {
        guard let entry else { return [] }
        guard case .sequence(let items) = entry.value else {
            throw RecipeError.wrongType(reader.location(entry.value), key: entry.key, expected: "a list of prompt strings",
                                        found: reader.describe(entry.value))
        }
        return try items.map { item in
            guard case .scalar = item, let text = reader.rawText(item) else {
                throw RecipeError.wrongType(reader.location(item), key: entry.key, expected: "a prompt string",
                                            found: reader.describe(item))
            }
            return text
        }
    }

    private static func number(_ entry: YAMLMapping.Entry?, reader: NodeReader, nonNegative: Bool) throws -> Double? {
        guard let entry else { return nil }
        let value: Double
        switch reader.resolve(entry.value) {
        case .int(let i)?: value = Double(i)
        case .float(let d)?: value = d
        default:
            throw RecipeError.wrongType(reader.location(entry.value), key: entry.key, expected: "a number",
                                        found: reader.describe(entry.value))
        }
        guard value.isFinite, !nonNegative || value >= 0 else {
            throw RecipeError.invalidValue(reader.location(entry.value), key: entry.key,
                                           reason: "expected a finite\(nonNegative ? ", non-negative" : "") number, found \(value)")
        }
        return value
    }
}
