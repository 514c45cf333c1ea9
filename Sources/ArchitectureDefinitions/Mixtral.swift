extension ArchitectureDefinition {
    /// Mixtral (`MixtralForCausalLM`): Llama whose MLP is a sparse mixture of experts (`num_local_experts`, top-k
    /// always renormalised). llama.cpp writes it as `llama` with `llama.expert_count`.
    public static let mixtral = ArchitectureDefinition(
        modelType: "mixtral", className: "MixtralForCausalLM",
        weightTables: [
            // As transformers 4 saves it: one tensor per expert and projection.
            WeightTable(name: "mixtral", modelTypes: ["mixtral"], architectures: ["MixtralForCausalLM"],
                        preWeights: LlamaFamily.embed,
                        layerWeights: LlamaFamily.attention + [
                            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.gate.weight"),
                            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w1.weight"),
                            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w2.weight"),
                            WeightTemplate("model.layers.${layer_index}.block_sparse_moe.experts.${expert_index}.w3.weight"),
                        ],
                        postWeights: LlamaFamily.head, expertCountKey: "num_local_experts"),
            // As transformers 5 (and mergekit-moe at HEAD) saves it: experts fused per layer.
            WeightTable(name: "mixtral-fused", modelTypes: ["mixtral"], architectures: ["MixtralForCausalLM"],
                        preWeights: LlamaFamily.embed,
                        layerWeights: LlamaFamily.attention + [
                            WeightTemplate("model.layers.${layer_index}.mlp.gate.weight"),
                            WeightTemplate("model.layers.${layer_index}.mlp.experts.gate_up_proj"),
                            WeightTemplate("model.layers.${layer_index}.mlp.experts.down_proj"),
                        ],
                        postWeights: LlamaFamily.head, expertCountKey: "num_local_experts"),
        ],
        decoder: LlamaFamily.decoder,
        config: ConfigConventions(experts: ExpertConventions(defaultPerToken: 2, alwaysNormalizeTopK: true)),
        gguf: mixtralGGUF, ggufExport: mixtralGGUF)

    private static let mixtralGGUF = GGUFConventions(architecture: "llama", withExperts: true, permutesQK: true,
                                                     attentionBiasFromTensors: true, names: LlamaFamily.ggufNames)
}
