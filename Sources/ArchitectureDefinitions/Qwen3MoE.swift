extension ArchitectureDefinition {
    /// Qwen3-MoE (`Qwen3MoeForCausalLM`): Qwen3's attention (q/k norms) with a mixture of experts, stored fused
    /// (transformers 5, mergekit 0.1.5) or per expert; its mixture-of-experts keys (`num_experts` or
    /// `num_local_experts`, four per token by default, `norm_topk_prob`, dense layers as Qwen2-MoE). The planner
    /// infers its weight table from the tensor names; `crucible moe` writes it from Qwen3 parents.
    public static let qwen3MoE = ArchitectureDefinition(
        modelType: "qwen3_moe", className: "Qwen3MoeForCausalLM",
        weightTables: [],
        decoder: ArchitectureDefinition.qwen3.decoder,
        config: ConfigConventions(experts: ExpertConventions(defaultPerToken: 4, denseLayerKeys: true)))
}
