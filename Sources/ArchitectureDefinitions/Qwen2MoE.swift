extension ArchitectureDefinition {
    /// Qwen2-MoE (`Qwen2MoeForCausalLM`): Qwen2 attention, routed experts (`num_experts`, four per token by default)
    /// plus a shared expert behind a sigmoid gate; `decoder_sparse_step` and `mlp_only_layers` keep some layers dense.
    /// The merge planner infers its table from the tensor names (dense layers make the layer stack uneven).
    public static let qwen2MoE = ArchitectureDefinition(
        modelType: "qwen2_moe", className: "Qwen2MoeForCausalLM",
        weightTables: [],
        decoder: LlamaFamily.decoder,
        config: ConfigConventions(attentionBias: true,
                                  experts: ExpertConventions(defaultPerToken: 4, sharedExpert: true, denseLayerKeys: true)))
}
