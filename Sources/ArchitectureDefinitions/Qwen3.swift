extension ArchitectureDefinition {
    /// Qwen3 (`Qwen3ForCausalLM`): the Llama block without biases (unless `attention_bias`), plus an RMSNorm over
    /// head_dim on every query and key head before RoPE (`self_attn.q_norm` / `k_norm`); head_dim is explicit in the
    /// config (heads · head_dim need not equal hidden). `layer_types` names each position's attention (sliding only
    /// with `use_sliding_window`). llama.cpp: architecture `qwen3`, `attn_q_norm` / `attn_k_norm`, no Q/K permutation
    /// (read and written the same way).
    public static let qwen3: ArchitectureDefinition = {
        let layer = LlamaFamily.layer
        let qkNorms = [WeightTemplate(layer + "self_attn.q_norm.weight"), WeightTemplate(layer + "self_attn.k_norm.weight")]
        let table = WeightTable(
            name: "qwen3", modelTypes: ["qwen3"], architectures: ["Qwen3ForCausalLM"], preWeights: LlamaFamily.embed,
            layerWeights: LlamaFamily.attention + qkNorms + LlamaFamily.optionalBiases + LlamaFamily.denseMLP,
            postWeights: LlamaFamily.head, positionalConfigArrays: [PositionalConfigArray(key: "layer_types")])
        var decoder = LlamaFamily.decoder
        decoder.queryNorm = "self_attn.q_norm.weight"
        decoder.keyNorm = "self_attn.k_norm.weight"
        let gguf = GGUFConventions(architecture: "qwen3", defaultRopeTheta: 1_000_000, attentionBiasFromTensors: true,
                                   names: LlamaFamily.ggufNames)
        return ArchitectureDefinition(
            modelType: "qwen3", className: "Qwen3ForCausalLM", weightTables: [table], decoder: decoder,
            gguf: gguf, synth: SynthConventions(), ggufExport: gguf)
    }()
}
