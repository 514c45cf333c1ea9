extension ArchitectureDefinition {
    /// Gemma 3, text only (`Gemma3ForCausalLM`, `model_type` gemma3_text): Gemma 2's block plus (1 + w) RMSNorms over
    /// head_dim on the queries and keys before RoPE; layer i is full attention iff (i + 1) % `sliding_window_pattern`
    /// == 0 (`layer_types`); sliding and full layers have their own RoPE (`rope_parameters.sliding_attention` /
    /// `full_attention`, or transformers 4's `rope_local_base_freq` beside `rope_theta` / `rope_scaling`); no attention
    /// soft-cap (transformers 5 never applies one), the final soft-cap when the config sets it. llama.cpp: `gemma3`.
    public static let gemma3 = GemmaFamily.definition(
        modelType: "gemma3_text", className: "Gemma3ForCausalLM", qkNorms: true,
        forward: ForwardConventions(normWeightOffset: 1, scalesEmbedding: true, appliesAttentionSoftCap: false, appliesFinalSoftCap: true),
        pattern: PositionalConfigArray(key: "layer_types", periodKey: "sliding_window_pattern", period: 6),
        requiredKeys: ["query_pre_attn_scalar"], slidingRopeTheta: ("rope_local_base_freq", 10_000),
        synth: SynthConventions(nullKeys: ["attn_logit_softcapping", "final_logit_softcapping"],
                                numberKeys: ["sliding_window": 512, "sliding_window_pattern": 6, "rope_local_base_freq": 10_000],
                                stringKeys: ["hidden_activation": "gelu_pytorch_tanh"], queryPreAttnScalarIsHeadDim: true))
}
