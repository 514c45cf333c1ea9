import Architectures
import Checkpoints
import Tensors

/// A `Linear` weight `[rows = out, cols = in]` (the Hugging Face layout), possibly a slice of a larger
/// stored tensor (one expert of a fused expert tensor), with an optional bias `[rows]`.
struct LinearWeight {
    let tensor: String
    /// First element of this matrix inside `tensor` (non-zero for fused expert slices).
    let offset: Int
    let rows: Int
    let cols: Int
    let bias: String?

    var elements: Range<Int> { offset..<(offset + rows * cols) }
}

/// One expert's SwiGLU MLP: w1 = gate_proj, w3 = up_proj, w2 = down_proj.
struct ExpertWeights {
    let gate: LinearWeight
    let up: LinearWeight
    let down: LinearWeight
}

/// A sparse mixture of experts: the router, the routed experts, and Qwen2-MoE's sigmoid-gated shared expert.
struct MixtureWeights {
    let router: LinearWeight
    let experts: [ExpertWeights]
    let topK: Int
    let normalizeTopK: Bool
    let shared: (expert: ExpertWeights, gate: LinearWeight)?
}

enum FeedForwardWeights {
    case dense(ExpertWeights)
    case mixture(MixtureWeights)
}

struct LayerWeights {
    let inputNorm: String
    let postAttentionNorm: String
    let q: LinearWeight
    let k: LinearWeight
    let v: LinearWeight
    let o: LinearWeight
    let feedForward: FeedForwardWeights
}

/// Every tensor the forward pass reads, resolved against the checkpoint and shape-checked once at load,
/// so a wrong file fails before any computation with the tensor's name.
struct WeightLayout {
    let embedding: String
    let finalNorm: String
    /// `lm_head.weight`, or the embedding when the model ties them.
    let outputHead: String
    let layers: [LayerWeights]

    init(config c: ModelConfig, source: TensorSource) throws {
        func check(_ name: String, _ shape: [Int]) throws {
            guard let info = source.info(name) else {
                throw InferenceError.missingWeight(tensor: name, checkpoint: source.location)
            }
            guard info.shape == shape else {
                throw InferenceError.weightShape(tensor: name, expected: shape, found: info.shape,
                                                 checkpoint: source.file(of: name) ?? source.location)
            }
            guard info.dtype.isFloatingPoint else {
                throw InferenceError.unsupportedWeight(tensor: name, storage: info.storage,
                                                       checkpoint: source.file(of: name) ?? source.location)
            }
        }
        func linear(_ name: String, _ rows: Int, _ cols: Int, biasAllowed: Bool = false) throws -> LinearWeight {
            try check(name + ".weight", [rows, cols])
            var bias: String? = nil
            let biasName = name + ".bias"
            // Biases are taken whenever the checkpoint has them (Qwen2), and required when the config says so.
            if biasAllowed, source.info(biasName) != nil || c.attentionBias {
                try check(biasName, [rows])
                bias = biasName
            }
            return LinearWeight(tensor: name + ".weight", offset: 0, rows: rows, cols: cols, bias: bias)
        }

        let h = c.hiddenSize
        embedding = "model.embed_tokens.weight"
        try check(embedding, [c.vocabSize, h])
        finalNorm = "model.norm.weight"
        try check(finalNorm, [h])
        if source.info("lm_head.weight") != nil {
            try check("lm_head.weight", [c.vocabSize, h])
            outputHead = "lm_head.weight"
        } else if c.tieWordEmbeddings {
            outputHead = embedding
        } else {
            throw InferenceError.missingWeight(tensor: "lm_head.weight (and tie_word_embeddings is false)", checkpoint: source.location)
        }

        var layers: [LayerWeights] = []
        for l in 0..<c.layerCount {
            let p = "model.layers.\(l)."
            try check(p + "input_layernorm.weight", [h])
            try check(p + "post_attention_layernorm.weight", [h])
            let q = try linear(p + "self_attn.q_proj", c.queryWidth, h, biasAllowed: true)
            let k = try linear(p + "self_attn.k_proj", c.kvWidth, h, biasAllowed: true)
            let v = try linear(p + "self_attn.v_proj", c.kvWidth, h, biasAllowed: true)
            let o = try linear(p + "self_attn.o_proj", h, c.queryWidth)
            let ffn: FeedForwardWeights
            if let moe = c.experts, !moe.denseLayers.contains(l) {
                ffn = .mixture(try Self.mixture(prefix: p, config: c, experts: moe, source: source, check: check, linear: linear))
            } else {
                ffn = .dense(try Self.mlp(p + "mlp.", width: c.intermediateSize, hidden: h, linear: linear))
            }
            layers.append(LayerWeights(inputNorm: p + "input_layernorm.weight",
                                       postAttentionNorm: p + "post_attention_layernorm.weight",
                                       q: q, k: k, v: v, o: o, feedForward: ffn))
        }
        self.layers = layers
    }

    /// Experts in any of the layouts Crucible reads:
    /// - Mixtral as transformers 4 saves it: `block_sparse_moe.experts.E.w1/w2/w3` (gate/down/up), router `block_sparse_moe.gate`;
    /// - fused, as transformers 5 (and mergekit-moe 0.1.5) saves Mixtral and Qwen3-MoE: `mlp.experts.gate_up_proj`
    ///   [E, 2·I, H] with gate rows before up rows, `mlp.experts.down_proj` [E, H, I], router `mlp.gate`;
    /// - Qwen-MoE per expert: `mlp.experts.E.gate_proj/up_proj/down_proj`, router `mlp.gate`, plus (Qwen2-MoE)
    ///   `mlp.shared_expert.*` and its `mlp.shared_expert_gate` [1, H].
    private static func mixture(
        prefix p: String, config c: ModelConfig, experts moe: ModelConfig.ExpertConfig, source: TensorSource,
        check: (String, [Int]) throws -> Void, linear: (String, Int, Int, Bool) throws -> LinearWeight
    ) throws -> MixtureWeights {
        let h = c.hiddenSize, i = moe.intermediateSize, e = moe.count
        let experts: [ExpertWeights]
        let router: LinearWeight
        let fusedGateUp = p + "mlp.experts.gate_up_proj"
        if source.info(fusedGateUp) != nil {
            let fusedDown = p + "mlp.experts.down_proj"
            try check(fusedGateUp, [e, 2 * i, h])
            try check(fusedDown, [e, h, i])
            router = try linear(p + "mlp.gate", e, h, false)
            experts = (0..<e).map { x in
                ExpertWeights(
                    gate: LinearWeight(tensor: fusedGateUp, offset: x * 2 * i * h, rows: i, cols: h, bias: nil),
                    up: LinearWeight(tensor: fusedGateUp, offset: x * 2 * i * h + i * h, rows: i, cols: h, bias: nil),
                    down: LinearWeight(tensor: fusedDown, offset: x * h * i, rows: h, cols: i, bias: nil))
            }
        } else if source.info(p + "block_sparse_moe.gate.weight") != nil {
            router = try linear(p + "block_sparse_moe.gate", e, h, false)
            experts = try (0..<e).map { x -> ExpertWeights in
                let q = p + "block_sparse_moe.experts.\(x)."
                return ExpertWeights(gate: try linear(q + "w1", i, h, false), up: try linear(q + "w3", i, h, false),
                                     down: try linear(q + "w2", h, i, false))
            }
        } else {
            router = try linear(p + "mlp.gate", e, h, false)
            experts = try (0..<e).map { x in try mlp(p + "mlp.experts.\(x).", width: i, hidden: h, linear: linear) }
        }
        var shared: (ExpertWeights, LinearWeight)? = nil
        if let width = moe.sharedIntermediateSize {
            shared = (try mlp(p + "mlp.shared_expert.", width: width, hidden: h, linear: linear),
                      try linear(p + "mlp.shared_expert_gate", 1, h, false))
        }
        return MixtureWeights(router: router, experts: experts, topK: moe.perToken, normalizeTopK: moe.normalizeTopK, shared: shared)
    }

    /// A SwiGLU MLP named `PREFIXgate_proj`, `up_proj`, `down_proj`.
    private static func mlp(_ prefix: String, width: Int, hidden h: Int,
                            linear: (String, Int, Int, Bool) throws -> LinearWeight) throws -> ExpertWeights {
        ExpertWeights(gate: try linear(prefix + "gate_proj", width, h, false), up: try linear(prefix + "up_proj", width, h, false),
                      down: try linear(prefix + "down_proj", h, width, false))
    }
}
