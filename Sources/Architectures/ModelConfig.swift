import ArchitectureDefinitions
import Checkpoints
import Foundation
import Numerics

/// The blueprint of a Llama-family decoder (Llama, Mistral, Qwen2, Mixtral, Qwen2-MoE, SmolLM2), read from a
/// Hugging Face `config.json`.
///
/// One struct with variant flags instead of a type per architecture: Qwen2 is Llama with q/k/v biases,
/// Mistral is Llama with a sliding window, Mixtral is Llama with `experts`. Both config layouts are
/// accepted: transformers 4 (`rope_theta`, `rope_scaling`, `torch_dtype`) and transformers 5
/// (`rope_parameters`, `dtype`).
public struct ModelConfig: Sendable, Equatable {
    /// How RoPE inverse frequencies are rescaled for long contexts.
    public enum RopeScaling: Sendable, Equatable {
        case none
        /// Position interpolation: every inverse frequency divided by `factor`.
        case linear(factor: Double)
        /// Llama 3.1 band-wise scaling (high frequencies kept, low divided by `factor`, smooth in between).
        case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalMaxPositions: Int)
        /// Inverse frequency i divided by `divisors[i]`: how llama.cpp stores Llama 3.1 scaling in a GGUF
        /// file (the `rope_freqs` tensor) instead of config keys.
        case frequencyDivisors([Float])
        /// Phi-3's LongRoPE: inverse frequency i divided by `short[i]`, or by `long[i]` in a forward call whose
        /// sequence (max position + 1) is longer than `originalMaxPositions`; cos and sin are multiplied by
        /// `attentionFactor`.
        case longRope(short: [Double], long: [Double], originalMaxPositions: Int, attentionFactor: Double)
    }

    /// Sparse mixture-of-experts feed-forward (Mixtral, Qwen2-MoE, Qwen3-MoE).
    public struct ExpertConfig: Sendable, Equatable {
        /// Routed experts per MoE layer (`num_local_experts`, or `num_experts`).
        public var count: Int
        /// `num_experts_per_tok` (top-k).
        public var perToken: Int
        /// Width of each routed expert's MLP (`moe_intermediate_size`, else `intermediate_size`).
        public var intermediateSize: Int
        /// Whether the top-k probabilities are renormalised to sum 1: always for Mixtral, `norm_topk_prob` for Qwen-MoE.
        public var normalizeTopK: Bool
        /// Width of the shared expert's MLP (Qwen2-MoE `shared_expert_intermediate_size`); nil when there is none.
        public var sharedIntermediateSize: Int?
        /// Layers that keep a dense MLP of `intermediate_size` (Qwen-MoE `mlp_only_layers`, and the layers
        /// `decoder_sparse_step` skips).
        public var denseLayers: Set<Int>

        public init(count: Int, perToken: Int, intermediateSize: Int, normalizeTopK: Bool = true,
                    sharedIntermediateSize: Int? = nil, denseLayers: Set<Int> = []) {
            self.count = count
            self.perToken = perToken
            self.intermediateSize = intermediateSize
            self.normalizeTopK = normalizeTopK
            self.sharedIntermediateSize = sharedIntermediateSize
            self.denseLayers = denseLayers
        }
    }

    /// `model_type` (`llama`, `mistral`, `qwen2`, `mixtral`…); informational.
    public var modelType: String
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    /// Per-head width; `head_dim` when the config gives it, else hidden / heads.
    public var headDim: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling
    public var tieWordEmbeddings: Bool
    /// Mistral's attention window W: query i sees keys j with i - W < j <= i. Nil means full causal attention.
    public var slidingWindow: Int?
    /// Whether q/k/v projections carry biases (Qwen2, or `attention_bias: true`).
    public var attentionBias: Bool
    public var experts: ExpertConfig?
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]
    /// The stored dtype the config declares (`dtype` / `torch_dtype`), if any.
    public var dtype: DType?
    public var maxPositionEmbeddings: Int?
    /// The leading dimensions of each head that RoPE rotates (`partial_rotary_factor` · head_dim); the rest pass through.
    public var rotaryDimensions: Int = 0
    /// The MLP's gate activation (`hidden_act` / `hidden_activation`).
    public var activation: Activation = .silu
    /// Which layers apply RoPE (SmolLM3's `no_rope_layers`); nil: every layer.
    public var ropeLayers: [Bool]? = nil
    /// Which layers use `slidingWindow`, from `layer_types`; nil: every layer (Mistral).
    public var slidingLayers: [Bool]? = nil
    /// RoPE of the sliding-window layers when it differs from the full layers' (Gemma 3's
    /// `rope_parameters.sliding_attention`); nil: the same for every layer.
    public var slidingRope: (theta: Double, scaling: RopeScaling)? {
        get { slidingRopeTheta.map { ($0, slidingRopeScaling) } }
        set { slidingRopeTheta = newValue?.theta; slidingRopeScaling = newValue?.scaling ?? .none }
    }
    private var slidingRopeTheta: Double? = nil
    private var slidingRopeScaling: RopeScaling = .none
    /// Attention scores are multiplied by this (`query_pre_attn_scalar`^-½ for Gemma); nil: head_dim^-½.
    public var attentionScale: Double? = nil
    /// `cap · tanh(score / cap)` on the attention scores before the mask (Gemma 2's `attn_logit_softcapping`).
    public var attentionSoftCap: Double? = nil
    /// `cap · tanh(logit / cap)` on the output logits (`final_logit_softcapping`).
    public var finalLogitSoftCap: Double? = nil

    /// The MLP activations the engine computes.
    public enum Activation: String, Sendable, Equatable {
        /// `silu(gate) · up` (SwiGLU).
        case silu
        /// `gelu_tanh(gate) · up` (Gemma's `gelu_pytorch_tanh`).
        case geluTanh = "gelu_pytorch_tanh"
    }

    /// The sliding window of layer `layer`, or nil when it attends to every earlier position.
    public func window(layer: Int) -> Int? {
        guard let w = slidingWindow else { return nil }
        if let slidingLayers { return layer < slidingLayers.count && slidingLayers[layer] ? w : nil }
        return w
    }

    public init(
        modelType: String = "llama", vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int,
        headCount: Int, kvHeadCount: Int, headDim: Int? = nil, rmsNormEps: Double = 1e-5, ropeTheta: Double = 10000,
        ropeScaling: RopeScaling = .none, tieWordEmbeddings: Bool = false, slidingWindow: Int? = nil,
        attentionBias: Bool = false, experts: ExpertConfig? = nil, bosTokenID: Int? = nil, eosTokenIDs: [Int] = [],
        dtype: DType? = nil, maxPositionEmbeddings: Int? = nil
    ) {
        self.modelType = modelType
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? (headCount > 0 ? hiddenSize / headCount : 0)
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.slidingWindow = slidingWindow
        self.attentionBias = attentionBias
        self.experts = experts
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
        self.dtype = dtype
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rotaryDimensions = self.headDim
    }

    /// Parses a `config.json` object. `file` is only used in error messages.
    public init(json: JSONObject, file: String) throws {
        let reader = ConfigReader(json: json, file: file)
        modelType = try reader.string("model_type") ?? "llama"
        vocabSize = try reader.requiredInt("vocab_size")
        hiddenSize = try reader.requiredInt("hidden_size")
        intermediateSize = try reader.requiredInt("intermediate_size")
        layerCount = try reader.requiredInt("num_hidden_layers")
        headCount = try reader.requiredInt("num_attention_heads")
        kvHeadCount = try reader.int("num_key_value_heads") ?? headCount
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw reader.error("num_attention_heads (\(headCount)) must be a positive multiple of num_key_value_heads (\(kvHeadCount))")
        }
        if let explicit = try reader.int("head_dim") {
            headDim = explicit
        } else {
            guard hiddenSize % headCount == 0 else {
                throw reader.error("hidden_size (\(hiddenSize)) is not divisible by num_attention_heads (\(headCount)) and no head_dim is "
                    + "given")
            }
            headDim = hiddenSize / headCount
        }
        guard headDim > 0, headDim % 2 == 0 else { throw reader.error("head_dim (\(headDim)) must be a positive even number for RoPE") }
        var partial = try reader.double("partial_rotary_factor") ?? 1
        if let params = json["rope_parameters"]?.objectValue,
           let inner = try ConfigReader(json: params, file: file, prefix: "rope_parameters.").double("partial_rotary_factor") {
            partial = inner
        }
        let rotary = Int(Double(headDim) * partial)
        guard partial > 0, partial <= 1, rotary >= 2, rotary % 2 == 0 else {
            throw reader.error("partial_rotary_factor \(partial) gives \(rotary) rotary dimensions of head_dim \(headDim); "
                + "an even number from 2 to head_dim is needed")
        }
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", layerCount)] where value <= 0 {
            throw reader.error("'\(key)' must be positive, found \(value)")
        }
        rmsNormEps = try reader.double("rms_norm_eps") ?? 1e-6
        tieWordEmbeddings = try reader.bool("tie_word_embeddings") ?? false
        maxPositionEmbeddings = try reader.int("max_position_embeddings")

        // RoPE: transformers 5 puts everything in `rope_parameters`; transformers 4 has `rope_theta`
        // at top level and an optional `rope_scaling` object. Gemma 3 nests one set per layer type.
        let ropeObject: JSONObject?
        var sliding: (Double, RopeScaling)? = nil
        let ropePrefix = json["rope_parameters"] != nil ? "rope_parameters." : "rope_scaling."
        if let params = json["rope_parameters"], !params.isNull {
            guard let obj = params.objectValue else { throw reader.error("'rope_parameters' must be an object") }
            ropeObject = obj
        } else if let scaling = json["rope_scaling"], !scaling.isNull {
            guard let obj = scaling.objectValue else { throw reader.error("'rope_scaling' must be an object or null") }
            ropeObject = obj
        } else {
            ropeObject = nil
        }
        if let ropeObject, ropeObject["full_attention"] != nil || ropeObject["sliding_attention"] != nil {
            for key in ropeObject.keys where key != "full_attention" && key != "sliding_attention" {
                throw reader.error("'\(ropePrefix)\(key)': per-layer-type RoPE holds only full_attention and sliding_attention")
            }
            func nested(_ key: String) throws -> (Double, RopeScaling) {
                guard let obj = ropeObject[key]?.objectValue else { throw reader.error("'\(ropePrefix)\(key)' must be an object") }
                return try Self.rope(ConfigReader(json: obj, file: file, prefix: ropePrefix + key + "."), fallbackTheta: nil)
            }
            (ropeTheta, ropeScaling) = try nested(ropeObject["full_attention"] != nil ? "full_attention" : "sliding_attention")
            if ropeObject["sliding_attention"] != nil { sliding = try nested("sliding_attention") }
        } else if let ropeObject {
            (ropeTheta, ropeScaling) = try Self.rope(ConfigReader(json: ropeObject, file: file, prefix: ropePrefix),
                                                     fallbackTheta: reader.double("rope_theta"), top: reader, rotaryDimensions: rotary)
        } else {
            ropeTheta = try reader.double("rope_theta") ?? 10000
            ropeScaling = .none
        }
        guard ropeTheta > 0 else { throw reader.error("rope_theta must be positive, found \(ropeTheta)") }

        // Mistral: `sliding_window` null means none. Qwen2 writes a window but disables it with
        // `use_sliding_window: false`.
        let window = try reader.int("sliding_window")
        if try reader.bool("use_sliding_window") == false {
            slidingWindow = nil
        } else {
            slidingWindow = window
        }
        if let w = slidingWindow, w <= 0 { throw reader.error("'sliding_window' must be positive or null, found \(w)") }

        let definition = ArchitectureDefinition.forModelType(modelType)
        let conventions = definition?.config ?? .generic
        attentionBias = try reader.bool("attention_bias") ?? conventions.attentionBias

        experts = try Self.experts(reader, conventions.experts, intermediateSize: intermediateSize, layerCount: layerCount)

        bosTokenID = try reader.int("bos_token_id")
        if let eos = json["eos_token_id"], let list = eos.arrayValue {
            eosTokenIDs = try list.map {
                guard let id = $0.intValue else { throw reader.error("'eos_token_id' must hold integers") }
                return id
            }
        } else {
            eosTokenIDs = (try reader.int("eos_token_id")).map { [$0] } ?? []
        }
        let dtypeName = try reader.string("dtype") ?? reader.string("torch_dtype")
        dtype = dtypeName.flatMap { DType(name: $0) }
        if sliding == nil, let key = conventions.slidingRopeThetaKey, json["rope_parameters"]?.objectValue?["full_attention"] == nil {
            if let theta = try reader.double(key) ?? conventions.defaultSlidingRopeTheta {
                guard theta > 0 else { throw reader.error("'\(key)' must be positive, found \(theta)") }
                sliding = (theta, .none)
            }
        }
        slidingRope = sliding
        rotaryDimensions = rotary
        try readForwardFeatures(reader, definition?.forward ?? .llama, conventions)
        try ConfigValidation.checkNumbers(self, file: file)
    }

    /// One RoPE parameter set: `rope_theta` and the scaling type (`default`, `linear`, `llama3`; others refused).
    private static func rope(_ r: ConfigReader, fallbackTheta: Double?, top: ConfigReader? = nil,
                             rotaryDimensions: Int = 0) throws -> (Double, RopeScaling) {
        let theta = try r.double("rope_theta") ?? fallbackTheta ?? 10000
        guard theta > 0 else { throw r.error("'\(r.prefix)rope_theta' must be positive, found \(theta)") }
        let type = try r.string("rope_type") ?? r.string("type") ?? "default"
        switch type {
        case "default":
            return (theta, .none)
        case "linear":
            return (theta, .linear(factor: try r.requiredDouble("factor")))
        case "llama3":
            return (theta, .llama3(
                factor: try r.requiredDouble("factor"),
                lowFrequencyFactor: try r.requiredDouble("low_freq_factor"),
                highFrequencyFactor: try r.requiredDouble("high_freq_factor"),
                originalMaxPositions: try r.requiredInt("original_max_position_embeddings")))
        case "longrope":
            // transformers' _compute_longrope_parameters: factor = max_position_embeddings / original, the attention
            // factor √(1 + ln factor / ln original) unless given.
            guard let original = try r.int("original_max_position_embeddings") ?? top?.int("original_max_position_embeddings"),
                  original > 0 else {
                throw r.error("longrope needs a positive '\(r.prefix)original_max_position_embeddings'")
            }
            func factors(_ key: String) throws -> [Double] {
                guard let list = r.json[key]?.arrayValue, list.count == rotaryDimensions / 2,
                      let values = Optional(list.compactMap(\.doubleValue)), values.count == list.count, values.allSatisfy({ $0 > 0 })
                else { throw r.error("'\(r.prefix)\(key)' must hold \(rotaryDimensions / 2) positive numbers (rotary dimensions / 2)") }
                return values
            }
            var factor = try r.double("factor") ?? 1
            if let maxPositions = try top?.int("max_position_embeddings"), top?.json["original_max_position_embeddings"] != nil
                || r.json["original_max_position_embeddings"] != nil {
                factor = Double(maxPositions) / Double(original)
            }
            let attention = try r.double("attention_factor")
                ?? (factor <= 1 ? 1 : (1 + Foundation.log(factor) / Foundation.log(Double(original))).squareRoot())
            return (theta, .longRope(short: try factors("short_factor"), long: try factors("long_factor"),
                                     originalMaxPositions: original, attentionFactor: attention))
        default:
            throw r.error("unsupported rope_type '\(type)' (supported: default, linear, llama3, longrope)")
        }
    }

    /// The activation, per-layer attention types, attention scale and soft-caps; a value the engine does not
    /// implement is refused by name rather than ignored.
    private mutating func readForwardFeatures(_ reader: ConfigReader, _ forward: ForwardConventions,
                                              _ conventions: ConfigConventions) throws {
        let json = reader.json
        for key in conventions.requiredKeys where json[key] == nil {
            throw reader.error("required key '\(key)' is missing (transformers would use its own default for this family)")
        }
        let actKey = conventions.activationKey
        let name = try reader.string(actKey) ?? conventions.defaultActivation
        guard let a = Activation(rawValue: name == "swish" ? "silu" : name) else {
            throw reader.error("'\(actKey)' is '\(name)': the engine computes silu and gelu_pytorch_tanh")
        }
        activation = a
        if try reader.bool("use_bidirectional_attention") == true {
            throw reader.error("'use_bidirectional_attention' is true: the engine runs causal attention only")
        }
        if let types = json["layer_types"], !types.isNull {
            guard let list = types.arrayValue, list.count == layerCount else {
                throw reader.error("'layer_types' must list one entry per layer (\(layerCount))")
            }
            slidingLayers = try list.map {
                switch $0.stringValue {
                case "full_attention": return false
                case "sliding_attention": return true
                default: throw reader.error("'layer_types' holds \($0), not full_attention or sliding_attention")
                }
            }
        } else if let pattern = conventions.slidingPattern {
            let period = try pattern.periodKey.flatMap { try reader.int($0) } ?? pattern.period ?? 1
            guard period >= 1 else { throw reader.error("'\(pattern.periodKey ?? "sliding_window_pattern")' must be at least 1") }
            slidingLayers = (0..<layerCount).map { ($0 + 1) % period != 0 }
        }
        if let pattern = conventions.ropeLayers {
            if let list = json[pattern.key], !list.isNull {
                guard let items = list.arrayValue, items.count == layerCount else {
                    throw reader.error("'\(pattern.key)' must list one entry per layer (\(layerCount))")
                }
                ropeLayers = try items.map {
                    guard let v = $0.intValue, v == 0 || v == 1 else { throw reader.error("'\(pattern.key)' holds \($0), not 0 or 1") }
                    return v == 1
                }
            } else {
                let period = try pattern.periodKey.flatMap { try reader.int($0) } ?? pattern.period ?? 1
                guard period >= 1 else { throw reader.error("'\(pattern.periodKey ?? pattern.key)' must be at least 1") }
                ropeLayers = (0..<layerCount).map { ($0 + 1) % period != 0 }
            }
        }
        if let scalar = try reader.double("query_pre_attn_scalar") {
            guard scalar > 0 else { throw reader.error("'query_pre_attn_scalar' must be positive, found \(scalar)") }
            attentionScale = 1 / scalar.squareRoot()
        }
        func cap(_ key: String, applied: Bool) throws -> Double? {
            guard let c = try reader.double(key) else { return nil }
            guard c > 0 else { throw reader.error("'\(key)' must be positive or null, found \(c)") }
            guard applied else {
                if forward == .llama { throw reader.error("'\(key)' is set, and this architecture has no soft-capping") }
                return nil
            }
            return c
        }
        attentionSoftCap = try cap("attn_logit_softcapping", applied: forward.appliesAttentionSoftCap)
        finalLogitSoftCap = try cap("final_logit_softcapping", applied: forward.appliesFinalSoftCap)
    }

    /// The MoE settings of a config, nil for a dense model. Mixtral spells the expert count `num_local_experts`,
    /// Qwen-MoE `num_experts` (transformers 5 writes either for Qwen3-MoE); the family's conventions fill the rest.
    private static func experts(_ reader: ConfigReader, _ conventions: ExpertConventions, intermediateSize: Int,
                                layerCount: Int) throws -> ExpertConfig? {
        guard let count = try reader.int("num_local_experts") ?? reader.int("num_experts"), count > 0 else { return nil }
        let k = try reader.int("num_experts_per_tok") ?? conventions.defaultPerToken
        guard k >= 1, k <= count else {
            throw reader.error("num_experts_per_tok (\(k)) must be between 1 and the expert count (\(count))")
        }
        let width = try reader.int("moe_intermediate_size") ?? intermediateSize
        guard width > 0 else { throw reader.error("'moe_intermediate_size' must be positive, found \(width)") }
        var shared: Int? = nil
        if conventions.sharedExpert {
            shared = try reader.int("shared_expert_intermediate_size") ?? intermediateSize
            guard let s = shared, s > 0 else { throw reader.error("'shared_expert_intermediate_size' must be positive") }
        }
        var dense = Set<Int>()
        if conventions.denseLayerKeys {
            let step = try reader.int("decoder_sparse_step") ?? 1
            guard step >= 1 else { throw reader.error("'decoder_sparse_step' must be at least 1, found \(step)") }
            for l in 0..<layerCount where (l + 1) % step != 0 { dense.insert(l) }
            if let list = reader.json["mlp_only_layers"], !list.isNull {
                guard let items = list.arrayValue else { throw reader.error("'mlp_only_layers' must be a list of layer indices") }
                for item in items {
                    guard let l = item.intValue, l >= 0, l < layerCount else {
                        throw reader.error("'mlp_only_layers' holds \(item), not a layer index below \(layerCount)")
                    }
                    dense.insert(l)
                }
            }
        }
        let normalize = conventions.alwaysNormalizeTopK ? true : (try reader.bool("norm_topk_prob") ?? false)
        return ExpertConfig(count: count, perToken: k, intermediateSize: width, normalizeTopK: normalize,
                            sharedIntermediateSize: shared, denseLayers: dense)
    }

    /// Reads `config.json` from a checkpoint folder (or a config file path).
    public init(file path: String) throws {
        guard case let .object(obj) = try JSONValue.parse(file: path) else {
            throw CheckpointError.invalidConfig(file: path, reason: "not a JSON object")
        }
        try self.init(json: obj, file: path)
    }

    /// The family's definition, when Crucible has one for `model_type`.
    public var definition: ArchitectureDefinition? { ArchitectureDefinition.forModelType(modelType) }

    /// Query heads per key/value head (grouped-query attention).
    public var headsPerKVHead: Int { headCount / kvHeadCount }
    public var queryWidth: Int { headCount * headDim }
    public var kvWidth: Int { kvHeadCount * headDim }
}

/// Typed, located access to config keys: every failure names the file and the key.
struct ConfigReader {
    let json: JSONObject
    let file: String
    var prefix: String = ""

    func error(_ reason: String) -> CheckpointError {
        .invalidConfig(file: file, reason: reason)
    }

    private func value(_ key: String) -> JSONValue? {
        guard let v = json[key], !v.isNull else { return nil }
        return v
    }

    func int(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        if let i = v.intValue { return i }
        if let d = v.doubleValue, d.rounded() == d, abs(d) < 1e15 { return Int(d) }
        throw error("'\(prefix)\(key)' must be an integer")
    }

    func requiredInt(_ key: String) throws -> Int {
        guard let i = try int(key) else { throw error("required key '\(prefix)\(key)' is missing") }
        return i
    }

    func double(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        if let d = v.doubleValue { return d }
        throw error("'\(prefix)\(key)' must be a number")
    }

    func requiredDouble(_ key: String) throws -> Double {
        guard let d = try double(key) else { throw error("required key '\(prefix)\(key)' is missing") }
        return d
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        if let b = v.boolValue { return b }
        throw error("'\(prefix)\(key)' must be true or false")
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        if let s = v.stringValue { return s }
        throw error("'\(prefix)\(key)' must be a string")
    }
}
