import Foundation

/// One weight of an architecture, as a name template.
///
/// Templates may use `${layer_index}` (and `${expert_index}` for per-expert weights, expanded over the
/// config's expert count), as mergekit's architecture tables do.
public struct WeightTemplate: Sendable, Equatable {
    public let name: String
    /// Vocabulary-indexed (embeddings, lm_head): rows are tokens, re-indexed per parent to the output vocabulary.
    public let isEmbed: Bool
    /// May be absent from a checkpoint (e.g. `lm_head.weight` of a tied model, optional biases).
    public let optional: Bool
    /// Names to read instead when this one is absent (a tied head reads the embedding).
    public let tiedTo: String?

    public init(_ name: String, embed: Bool = false, optional: Bool = false, tiedTo: String? = nil) {
        self.name = name
        self.isEmbed = embed
        self.optional = optional
        self.tiedTo = tiedTo
    }

    /// The name for one layer (and expert).
    public func resolved(layer: Int? = nil, expert: Int? = nil) -> String {
        var s = name
        if let layer { s = s.replacingOccurrences(of: "${layer_index}", with: String(layer)) }
        if let expert { s = s.replacingOccurrences(of: "${expert_index}", with: String(expert)) }
        return s
    }

    public var isPerExpert: Bool { name.contains("${expert_index}") }
}

/// The weights a checkpoint of an architecture holds, as the merge planner, `compare`, `inspect` and the MoE writer
/// enumerate them, and where its layer count lives. Written in the architecture's `ArchitectureDefinition`, or
/// inferred from a checkpoint's tensor names.
public struct WeightTable: Sendable, Equatable {
    /// A short unique name for this table (`llama`, `mixtral-fused`…).
    public let name: String
    /// `config.json` `model_type` values this table serves.
    public let modelTypes: [String]
    /// `config.json` `architectures[0]` values this table serves.
    public let architectures: [String]
    /// Weights before the layer stack (embeddings).
    public let preWeights: [WeightTemplate]
    /// Weights of one decoder layer.
    public let layerWeights: [WeightTemplate]
    /// Weights after the layer stack (final norm, head).
    public let postWeights: [WeightTemplate]
    /// The config key holding the layer count.
    public let layerCountKey: String
    /// The config key holding the expert count, for per-expert templates.
    public let expertCountKey: String?
    /// Config arrays with one entry per layer (`layer_types`…): a merge whose slices change the layers rewrites
    /// them to follow the layers they describe, and refuses a parent whose array has another length.
    public let perLayerConfigKeys: [String]
    /// Config arrays whose entry describes an output position rather than the layer stored there (`layer_types`
    /// of Qwen3 and Gemma: which layers use the sliding window follows a pattern over positions). A merge whose
    /// slices change the layers keeps the donor's entries position by position, as mergekit does, and continues the
    /// pattern past its end when the merge grows the model.
    public var positionalConfigArrays: [PositionalConfigArray] = []
    /// For tables inferred from tensor names: the layer count found there, used when the config has no
    /// `layerCountKey`.
    public let inferredLayerCount: Int?
    /// True for tables inferred from a checkpoint's tensor names rather than written by hand.
    public var isInferred: Bool { inferredLayerCount != nil }

    public init(name: String, modelTypes: [String], architectures: [String], preWeights: [WeightTemplate],
                layerWeights: [WeightTemplate], postWeights: [WeightTemplate],
                layerCountKey: String = "num_hidden_layers", expertCountKey: String? = nil, perLayerConfigKeys: [String] = [],
                positionalConfigArrays: [PositionalConfigArray] = [], inferredLayerCount: Int? = nil) {
        self.name = name
        self.modelTypes = modelTypes
        self.architectures = architectures
        self.preWeights = preWeights
        self.layerWeights = layerWeights
        self.postWeights = postWeights
        self.layerCountKey = layerCountKey
        self.expertCountKey = expertCountKey
        self.perLayerConfigKeys = perLayerConfigKeys
        self.positionalConfigArrays = positionalConfigArrays
        self.inferredLayerCount = inferredLayerCount
    }

    /// A layer's weight names (per-expert templates expanded), each with its template.
    public func layerWeightNames(layer: Int, experts: Int) -> [(name: String, template: WeightTemplate)] {
        var out: [(String, WeightTemplate)] = []
        for w in layerWeights {
            if w.isPerExpert {
                for e in 0..<experts { out.append((w.resolved(layer: layer, expert: e), w)) }
            } else {
                out.append((w.resolved(layer: layer), w))
            }
        }
        return out
    }

    /// Every weight name for a model with `layers` layers, in output order.
    public func allWeightNames(layers: Int, experts: Int = 0) -> [String] {
        preWeights.map(\.name) + (0..<layers).flatMap { l in layerWeightNames(layer: l, experts: experts).map(\.name) }
            + postWeights.map(\.name)
    }
}

/// A per-position config array that repeats with a period: entry i equals entry i − period.
public struct PositionalConfigArray: Sendable, Equatable {
    /// The config key of the array (`layer_types`).
    public let key: String
    /// The config key holding the period (Gemma 3's `sliding_window_pattern`), read first.
    public var periodKey: String? = nil
    /// The period when `periodKey` is absent: 2 for Gemma 2's alternation; nil: the smallest period the donor's
    /// array shows (1 for Qwen3's all-full layers).
    public var period: Int? = nil

    public init(key: String, periodKey: String? = nil, period: Int? = nil) {
        self.key = key
        self.periodKey = periodKey
        self.period = period
    }

    /// The array for `count` positions from the donor's `values`: the donor's entries where it has them, then the
    /// pattern continued with `period` (when given) or the donor's smallest period.
    public func extended<T: Equatable>(_ values: [T], to count: Int, period given: Int?) -> [T] {
        guard !values.isEmpty else { return values }
        let p = given ?? period ?? (1...values.count).first { p in values.indices.allSatisfy { $0 < p || values[$0] == values[$0 - p] } }!
        var out = Array(values.prefix(count))
        while out.count < count { out.append(out.count >= p ? out[out.count - p] : values[out.count % values.count]) }
        return out
    }
}
