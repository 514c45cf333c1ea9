extension ArchitectureDefinition {
    /// Qwen3-MoE (`Qwen3MoeForCausalLM`): its mixture-of-experts keys (`num_experts`, four per token by default,
    /// `norm_topk_prob`, dense layers as Qwen2-MoE). Only the config reader uses this definition so far: the engine
    /// does not read Qwen3's q/k norms yet, and the planner infers the table from the tensor names.
    public static let qwen3MoE = ArchitectureDefinition(
        modelType: "qwen3_moe", className: "Qwen3MoeForCausalLM",
        weightTables: [],
        decoder: LlamaFamily.decoder,
        config: ConfigConventions(experts: ExpertConventions(defaultPerToken: 4, denseLayerKeys: true)))
}
