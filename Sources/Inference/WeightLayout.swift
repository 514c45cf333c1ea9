import ArchitectureDefinitions
import Architectures
import Checkpoints

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
    /// Per-head q/k RMSNorms [headDim] (Qwen3, Gemma 3).
    var queryNorm: String? = nil
    var keyNorm: String? = nil
    /// Sandwich norms [hidden] on the attention and feed-forward outputs (Gemma).
    var attentionOutputNorm: String? = nil
    var feedForwardOutputNorm: String? = nil
}

/// Every tensor the forward pass reads, resolved against the checkpoint and shape-checked once at load,
/// so a wrong file fails before any computation with the tensor's name. The names come from the model's
/// `ArchitectureDefinition`; a `model_type` without one is refused.
struct WeightLayout {
    let embedding: String
    let finalNorm: String
    /// `lm_head.weight`, or the embedding when the model ties them.
    let outputHead: String
    let layers: [LayerWeights]
    /// Added to every RMSNorm weight (Gemma's 1 + w).
    let normWeightOffset: Float
    /// Embeddings × √hidden (Gemma).
    let scalesEmbedding: Bool

    init(config c: ModelConfig, source: TensorSource) throws {
        var used = Set<String>()
        func check(_ name: String, _ shape: [Int]) throws {
            used.insert(name)
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
        func linear(_ name: String, _ rows: Int, _ cols: Int, biasAllowed: Bool = false, biasIfPresent: Bool = false) throws
            -> LinearWeight {
            try check(name + ".weight", [rows, cols])
            var bias: String? = nil
            let biasName = name + ".bias"
            let present = source.info(biasName) != nil
            // Biases are taken whenever the checkpoint has them (Qwen2), and required when the config says so; the
            // output projection's only when present (Llama's attention_bias has one, Qwen2's does not).
            if (biasAllowed && (present || c.attentionBias)) || (biasIfPresent && present) {
                try check(biasName, [rows])
                bias = biasName
            }
            return LinearWeight(tensor: name + ".weight", offset: 0, rows: rows, cols: cols, bias: bias)
        }

        let h = c.hiddenSize
        guard let definition = c.definition else {
            throw InferenceError.unsupportedArchitecture(modelType: c.modelType, supported: ArchitectureDefinition.all.map(\.modelType),
                                                         checkpoint: source.location)
        }
        let names = definition.decoder
        let forward = definition.forward
        normWeightOffset = forward.normWeightOffset
        scalesEmbedding = forward.scalesEmbedding
        embedding = names.embedding
        try check(embedding, [c.vocabSize, h])
        finalNorm = names.finalNorm
        try check(finalNorm, [h])
        if source.info(names.head) != nil {
            try check(names.head, [c.vocabSize, h])
            outputHead = names.head
        } else if c.tieWordEmbeddings {
            outputHead = embedding
        } else {
            throw InferenceError.missingWeight(tensor: "\(names.head) (and tie_word_embeddings is false)", checkpoint: source.location)
        }

        var layers: [LayerWeights] = []
        for l in 0..<c.layerCount {
            let p = names.layerPrefix(l)
            try check(p + names.inputNorm, [h])
            try check(p + names.postAttentionNorm, [h])
            let q, k, v: LinearWeight
            if let fused = names.qkvProjection {
                // Phi-3: one tensor, rows [q | k | v].
                let name = p + fused + ".weight", qw = c.queryWidth, kw = c.kvWidth
                try check(name, [qw + 2 * kw, h])
                if source.info(p + fused + ".bias") != nil || c.attentionBias {
                    throw InferenceError.unsupportedWeight(tensor: p + fused + ".bias", storage: "bias of a fused projection",
                                                           checkpoint: source.location)
                }
                q = LinearWeight(tensor: name, offset: 0, rows: qw, cols: h, bias: nil)
                k = LinearWeight(tensor: name, offset: qw * h, rows: kw, cols: h, bias: nil)
                v = LinearWeight(tensor: name, offset: (qw + kw) * h, rows: kw, cols: h, bias: nil)
            } else {
                q = try linear(p + names.query, c.queryWidth, h, biasAllowed: true)
                k = try linear(p + names.key, c.kvWidth, h, biasAllowed: true)
                v = try linear(p + names.value, c.kvWidth, h, biasAllowed: true)
            }
            let o = try linear(p + names.output, h, c.queryWidth, biasIfPresent: true)
            let ffn: FeedForwardWeights
            if let moe = c.experts, !moe.denseLayers.contains(l) {
                ffn = .mixture(try Self.mixture(prefix: p, names: names, config: c, experts: moe, source: source, check: check,
                                                linear: { try linear($0, $1, $2, biasAllowed: $3) }))
            } else {
                if let fused = names.gateUpProjection {
                    // Phi-3: one tensor, rows [gate | up].
                    let name = p + fused + ".weight", i = c.intermediateSize
                    try check(name, [2 * i, h])
                    ffn = .dense(ExpertWeights(gate: LinearWeight(tensor: name, offset: 0, rows: i, cols: h, bias: nil),
                                               up: LinearWeight(tensor: name, offset: i * h, rows: i, cols: h, bias: nil),
                                               down: try linear(p + names.mlp.down, h, i)))
                } else {
                    ffn = .dense(try Self.mlp(p, names.mlp, width: c.intermediateSize, hidden: h,
                                              linear: { try linear($0, $1, $2, biasAllowed: $3) }))
                }
            }
            var weights = LayerWeights(inputNorm: p + names.inputNorm, postAttentionNorm: p + names.postAttentionNorm,
                                       q: q, k: k, v: v, o: o, feedForward: ffn)
            if let qn = names.queryNorm, let kn = names.keyNorm {
                try check(p + qn, [c.headDim])
                try check(p + kn, [c.headDim])
                weights.queryNorm = p + qn
                weights.keyNorm = p + kn
            }
            if let an = names.attentionOutputNorm {
                try check(p + an, [h])
                weights.attentionOutputNorm = p + an
            }
            if let fn = names.feedForwardOutputNorm {
                guard case .dense = ffn else {
                    throw InferenceError.missingWeight(tensor: p + fn + " (a feed-forward output norm after experts is not supported)",
                                                       checkpoint: source.location)
                }
                try check(p + fn, [h])
                weights.feedForwardOutputNorm = p + fn
            }
            layers.append(weights)
        }
        self.layers = layers
        // Every stored weight must be one the forward pass reads (RoPE caches that old checkpoints saved aside).
        for name in source.tensorNames where !used.contains(name) && !name.hasSuffix("rotary_emb.inv_freq") {
            throw InferenceError.unusedWeight(tensor: name, architecture: c.modelType, checkpoint: source.file(of: name) ?? source.location)
        }
    }

    /// Experts in the first of the definition's layouts whose probe tensor the layer holds (else its last layout):
    /// for the Llama family, transformers 5's fused experts (`mlp.experts.gate_up_proj` [E, 2·I, H] with gate rows
    /// before up rows, `mlp.experts.down_proj` [E, H, I], router `mlp.gate`), Mixtral as transformers 4 saves it
    /// (`block_sparse_moe.experts.E.w1/w2/w3` = gate/down/up, router `block_sparse_moe.gate`), and Qwen-MoE per
    /// expert (`mlp.experts.E.gate_proj/up_proj/down_proj`, router `mlp.gate`); plus, when the config declares one,
    /// Qwen2-MoE's shared expert and its gate [1, H].
    private static func mixture(
        prefix p: String, names: DecoderNames, config c: ModelConfig, experts moe: ModelConfig.ExpertConfig, source: TensorSource,
        check: (String, [Int]) throws -> Void, linear: (String, Int, Int, Bool) throws -> LinearWeight
    ) throws -> MixtureWeights {
        let h = c.hiddenSize, i = moe.intermediateSize, e = moe.count
        guard let layout = names.expertLayouts.first(where: { source.info(p + $0.probe) != nil }) ?? names.expertLayouts.last else {
            throw InferenceError.missingWeight(tensor: p + "experts (this architecture declares no expert layout)",
                                               checkpoint: source.location)
        }
        let router: LinearWeight
        let experts: [ExpertWeights]
        switch layout.storage {
        case let .fused(gateUpName, downName):
            let fusedGateUp = p + gateUpName, fusedDown = p + downName
            try check(fusedGateUp, [e, 2 * i, h])
            try check(fusedDown, [e, h, i])
            router = try linear(p + layout.router, e, h, false)
            experts = (0..<e).map { x in
                ExpertWeights(
                    gate: LinearWeight(tensor: fusedGateUp, offset: x * 2 * i * h, rows: i, cols: h, bias: nil),
                    up: LinearWeight(tensor: fusedGateUp, offset: x * 2 * i * h + i * h, rows: i, cols: h, bias: nil),
                    down: LinearWeight(tensor: fusedDown, offset: x * h * i, rows: h, cols: i, bias: nil))
            }
        case let .perExpert(mlpNames):
            router = try linear(p + layout.router, e, h, false)
            experts = try (0..<e).map { x in try mlp(p, mlpNames.expert(x), width: i, hidden: h, linear: linear) }
        }
        var shared: (ExpertWeights, LinearWeight)? = nil
        if let width = moe.sharedIntermediateSize {
            shared = (try mlp(p, names.sharedExpert, width: width, hidden: h, linear: linear),
                      try linear(p + names.sharedExpertGate, 1, h, false))
        }
        return MixtureWeights(router: router, experts: experts, topK: moe.perToken, normalizeTopK: moe.normalizeTopK, shared: shared)
    }

    /// A SwiGLU MLP under `prefix`.
    private static func mlp(_ prefix: String, _ names: MLPNames, width: Int, hidden h: Int,
                            linear: (String, Int, Int, Bool) throws -> LinearWeight) throws -> ExpertWeights {
        ExpertWeights(gate: try linear(prefix + names.gate, width, h, false), up: try linear(prefix + names.up, width, h, false),
                      down: try linear(prefix + names.down, h, width, false))
    }
}
