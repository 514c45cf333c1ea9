extension ArchitectureDefinition {
    /// Phi-3 (`Phi3ForCausalLM`): the Llama block with fused projections, `self_attn.qkv_proj` (rows q | k | v) and
    /// `mlp.gate_up_proj` (rows gate | up), which merges treat as single tensors as mergekit does (per-tensor
    /// statistics over the fused tensor; never sliced per head); RoPE may be partial (`partial_rotary_factor`) and
    /// LongRoPE (`rope_type: longrope`, short and long factors). GGUF files of it are not read yet: llama.cpp keeps
    /// LongRoPE's factors as tensors.
    public static let phi3: ArchitectureDefinition = {
        let layer = LlamaFamily.layer
        let table = WeightTable(
            name: "phi3", modelTypes: ["phi3"], architectures: ["Phi3ForCausalLM"], preWeights: LlamaFamily.embed,
            layerWeights: ["input_layernorm.weight", "self_attn.qkv_proj.weight", "self_attn.o_proj.weight",
                           "post_attention_layernorm.weight", "mlp.gate_up_proj.weight", "mlp.down_proj.weight"]
                .map { WeightTemplate(layer + $0) },
            postWeights: LlamaFamily.head)
        var decoder = LlamaFamily.decoder
        decoder.qkvProjection = "self_attn.qkv_proj"
        decoder.gateUpProjection = "mlp.gate_up_proj"
        return ArchitectureDefinition(modelType: "phi3", className: "Phi3ForCausalLM", weightTables: [table], decoder: decoder,
                                      synth: SynthConventions(nullKeys: ["sliding_window"]))
    }()
}
