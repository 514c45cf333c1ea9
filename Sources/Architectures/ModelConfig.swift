import ArchitectureDefinitions
import Checkpoints
import Tensors

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
        for (key, value) in [("vocab_size", vocabSize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
                             ("num_hidden_layers", layerCount)] where value <= 0 {
            throw reader.error("'\(key)' must be positive, found \(value)")
        }
        rmsNormEps = try reader.double("rms_norm_eps") ?? 1e-6
        tieWordEmbeddings = try reader.bool("tie_word_embeddings") ?? false
        maxPositionEmbeddings = try reader.int("max_position_embeddings")

        // RoPE: transformers 5 puts everything in `rope_parameters`; transformers 4 has `rope_theta`
        // at top level and an optional `rope_scaling` object.
        let ropeObject: JSONObject?
        if let params = json["rope_parameters"], !params.isNull {
            guard let obj = params.objectValue else { throw reader.error("'rope_parameters' must be an object") }
            ropeObject = obj
        } else if let scaling = json["rope_scaling"], !scaling.isNull {
            guard let obj = scaling.objectValue else { throw reader.error("'rope_scaling' must be an object or null") }
            ropeObject = obj
        } else {
            ropeObject = nil
        }
        let ropeReader = ropeObject.map { ConfigReader(json: $0, file: file,
                                                       prefix: json["rope_parameters"] != nil ? "rope_parameters." : "rope_scaling.") }
        ropeTheta = try ropeReader?.double("rope_theta") ?? reader.double("rope_theta") ?? 10000
        guard ropeTheta > 0 else { throw reader.error("rope_theta must be positive, found \(ropeTheta)") }
        if let ropeReader {
            let type = try ropeReader.string("rope_type") ?? ropeReader.string("type") ?? "default"
            switch type {
            case "default":
                ropeScaling = .none
            case "linear":
                ropeScaling = .linear(factor: try ropeReader.requiredDouble("factor"))
            case "llama3":
                ropeScaling = .llama3(
                    factor: try ropeReader.requiredDouble("factor"),
                    lowFrequencyFactor: try ropeReader.requiredDouble("low_freq_factor"),
                    highFrequencyFactor: try ropeReader.requiredDouble("high_freq_factor"),
                    originalMaxPositions: try ropeReader.requiredInt("original_max_position_embeddings"))
            default:
                throw ropeReader.error("unsupported rope_type '\(type)' (supported: default, linear, llama3)")
            }
        } else {
            ropeScaling = .none
        }

        // Mistral: `sliding_window` null means none. Qwen2 writes a window but disables it with
        // `use_sliding_window: false`.
        let window = try reader.int("sliding_window")
        if try reader.bool("use_sliding_window") == false {
            slidingWindow = nil
        } else {
            slidingWindow = window
        }
        if let w = slidingWindow, w <= 0 { throw reader.error("'sliding_window' must be positive or null, found \(w)") }

        let conventions = ArchitectureDefinition.forModelType(modelType)?.config ?? .generic
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
        try ConfigValidation.checkNumbers(self, file: file)
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
