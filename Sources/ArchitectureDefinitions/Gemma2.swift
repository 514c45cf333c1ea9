extension ArchitectureDefinition {
    /// Gemma 2 (`Gemma2ForCausalLM`): embeddings × √hidden; every RMSNorm is `x̂ · (1 + w)` (stored as w, merged as
    /// w); sandwich norms (`post_attention_layernorm` on the attention output, `pre_feedforward_layernorm` /
    /// `post_feedforward_layernorm` around the MLP); scores scaled by `query_pre_attn_scalar`^-½ and soft-capped by
    /// `attn_logit_softcapping`; sliding window on even layers (`layer_types`); GELU-tanh MLP (`hidden_activation`);
    /// logits soft-capped by `final_logit_softcapping`; head tied to the embedding. llama.cpp: architecture `gemma2`,
    /// whose converter stores the norms as 1 + w.
    public static let gemma2 = GemmaFamily.definition(
        modelType: "gemma2", className: "Gemma2ForCausalLM", qkNorms: false,
        forward: ForwardConventions(normWeightOffset: 1, scalesEmbedding: true, appliesAttentionSoftCap: true, appliesFinalSoftCap: true),
        pattern: PositionalConfigArray(key: "layer_types", period: 2),
        requiredKeys: ["query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping"],
        synth: SynthConventions(numberKeys: ["attn_logit_softcapping": 50, "final_logit_softcapping": 30, "sliding_window": 4096],
                                stringKeys: ["hidden_activation": "gelu_pytorch_tanh"], queryPreAttnScalarIsHeadDim: true))
}

/// What Gemma 2 and Gemma 3 share: their weight names (sandwich norms), llama.cpp's names for them, and the
/// config conventions (`hidden_activation`, GELU-tanh by default).
public enum GemmaFamily {
    static let layer = LlamaFamily.layer

    static func definition(modelType: String, className: String, qkNorms: Bool, forward: ForwardConventions,
                           pattern: PositionalConfigArray, requiredKeys: [String], slidingRopeTheta: (String, Double)? = nil,
                           synth: SynthConventions)
        -> ArchitectureDefinition {
        let norms = ["pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight"].map { WeightTemplate(layer + $0) }
        let qk = qkNorms ? ["self_attn.q_norm.weight", "self_attn.k_norm.weight"].map { WeightTemplate(layer + $0) } : []
        let table = WeightTable(
            name: modelType, modelTypes: [modelType], architectures: [className], preWeights: LlamaFamily.embed,
            layerWeights: LlamaFamily.attention + qk + LlamaFamily.optionalBiases + norms + LlamaFamily.denseMLP,
            postWeights: LlamaFamily.head, positionalConfigArrays: [pattern])
        var decoder = LlamaFamily.decoder
        decoder.postAttentionNorm = "pre_feedforward_layernorm.weight"
        decoder.attentionOutputNorm = "post_attention_layernorm.weight"
        decoder.feedForwardOutputNorm = "post_feedforward_layernorm.weight"
        if qkNorms {
            decoder.queryNorm = "self_attn.q_norm.weight"
            decoder.keyNorm = "self_attn.k_norm.weight"
        }
        var config = ConfigConventions(activationKey: "hidden_activation", defaultActivation: "gelu_pytorch_tanh",
                                       requiredKeys: requiredKeys, slidingPattern: pattern)
        config.slidingRopeThetaKey = slidingRopeTheta?.0
        config.defaultSlidingRopeTheta = slidingRopeTheta?.1
        return ArchitectureDefinition(
            modelType: modelType, className: className, weightTables: [table], decoder: decoder, config: config,
            gguf: GGUFConventions(architecture: modelType == "gemma2" ? "gemma2" : "gemma3", defaultRopeTheta: 10_000,
                                  normWeightShift: 1,
                                  metadataKeys: ["attn_logit_softcapping": "attn_logit_softcapping",
                                                 "final_logit_softcapping": "final_logit_softcapping",
                                                 "attention.sliding_window_pattern": "sliding_window_pattern"],
                                  constantKeys: ["hidden_activation": "gelu_pytorch_tanh"], queryPreAttnScalarAsLlamaCpp: true,
                                  names: ggufNames),
            synth: synth, forward: forward)
    }

    /// llama.cpp's names (`llama-arch.cpp`, LLM_ARCH_GEMMA2 / GEMMA3): `ffn_norm` is the pre-feed-forward norm, and the
    /// sandwich norms are `post_attention_norm` and `post_ffw_norm`.
    public static let ggufNames = GGUFNameTable(
        global: ["token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
                 "output.weight": "lm_head.weight"],
        layer: [
            "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
            "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm", "attn_norm": "input_layernorm",
            "post_attention_norm": "post_attention_layernorm", "ffn_norm": "pre_feedforward_layernorm",
            "post_ffw_norm": "post_feedforward_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
        ],
        expert: [:], layerPrefix: layer, expertPrefix: "")
}
