/// The pieces the Llama-style decoders share (Llama, Mistral, Qwen2, Mixtral, Qwen-MoE): their Hugging Face weight
/// names, llama.cpp's names for them, and the weight tables built from them. A family that differs (extra norms,
/// fused projections) declares its own pieces in its own file.
public enum LlamaFamily {
    static let layer = "model.layers.${layer_index}."

    public static let attention: [WeightTemplate] = [
        WeightTemplate(layer + "input_layernorm.weight"),
        WeightTemplate(layer + "self_attn.q_proj.weight"),
        WeightTemplate(layer + "self_attn.k_proj.weight"),
        WeightTemplate(layer + "self_attn.v_proj.weight"),
        WeightTemplate(layer + "self_attn.o_proj.weight"),
        WeightTemplate(layer + "post_attention_layernorm.weight"),
    ]
    public static let optionalBiases: [WeightTemplate] = [
        WeightTemplate(layer + "self_attn.q_proj.bias", optional: true),
        WeightTemplate(layer + "self_attn.k_proj.bias", optional: true),
        WeightTemplate(layer + "self_attn.v_proj.bias", optional: true),
        WeightTemplate(layer + "self_attn.o_proj.bias", optional: true),
    ]
    public static let requiredQKVBiases: [WeightTemplate] = [
        WeightTemplate(layer + "self_attn.q_proj.bias"),
        WeightTemplate(layer + "self_attn.k_proj.bias"),
        WeightTemplate(layer + "self_attn.v_proj.bias"),
    ]
    public static let denseMLP: [WeightTemplate] = [
        WeightTemplate(layer + "mlp.gate_proj.weight"),
        WeightTemplate(layer + "mlp.up_proj.weight"),
        WeightTemplate(layer + "mlp.down_proj.weight"),
    ]
    public static let embed = [WeightTemplate("model.embed_tokens.weight", embed: true)]
    public static let head = [
        WeightTemplate("model.norm.weight"),
        WeightTemplate("lm_head.weight", embed: true, optional: true, tiedTo: "model.embed_tokens.weight"),
    ]

    /// A dense Llama-style family: one weight table (attention, `biases`, MLP) named after `modelType`, and the
    /// family's engine names.
    static func dense(modelType: String, className: String, biases: [WeightTemplate], config: ConfigConventions = .generic,
                      gguf: GGUFConventions, ggufExport: GGUFConventions? = nil, synth: SynthConventions,
                      transformersTokenizer: String? = nil) -> ArchitectureDefinition {
        let table = WeightTable(name: modelType, modelTypes: [modelType], architectures: [className],
                                preWeights: embed, layerWeights: attention + biases + denseMLP, postWeights: head)
        return ArchitectureDefinition(modelType: modelType, className: className, weightTables: [table], decoder: decoder,
                                      config: config, gguf: gguf, synth: synth, transformersTokenizer: transformersTokenizer,
                                      ggufExport: ggufExport)
    }

    /// How llama.cpp reads and its converter writes Llama (and Mistral, which it writes as Llama): Q/K rows permuted.
    static let llamaGGUF = GGUFConventions(architecture: "llama", permutesQK: true, attentionBiasFromTensors: true, names: ggufNames)

    /// Mixtral's experts as transformers 4 saves them: one tensor per expert and projection.
    public static let mixtralExperts = ExpertLayout(
        router: "block_sparse_moe.gate",
        storage: .perExpert(MLPNames(gate: "block_sparse_moe.experts.${expert_index}.w1",
                                     up: "block_sparse_moe.experts.${expert_index}.w3",
                                     down: "block_sparse_moe.experts.${expert_index}.w2")),
        probe: "block_sparse_moe.gate.weight")
    /// Experts fused per layer, as transformers 5 (and mergekit 0.1.5) saves Mixtral and Qwen3-MoE.
    public static let fusedExperts = ExpertLayout(
        router: "mlp.gate", storage: .fused(gateUp: "mlp.experts.gate_up_proj", down: "mlp.experts.down_proj"),
        probe: "mlp.experts.gate_up_proj")
    /// Qwen-MoE per expert: `mlp.experts.E.gate_proj/up_proj/down_proj`, router `mlp.gate`.
    public static let qwenExperts = ExpertLayout(
        router: "mlp.gate",
        storage: .perExpert(MLPNames(gate: "mlp.experts.${expert_index}.gate_proj", up: "mlp.experts.${expert_index}.up_proj",
                                     down: "mlp.experts.${expert_index}.down_proj")),
        probe: "mlp.gate.weight")

    /// The engine's names; expert layouts in the order they are recognised.
    public static let decoder = DecoderNames(
        embedding: "model.embed_tokens.weight", finalNorm: "model.norm.weight", head: "lm_head.weight", layer: layer,
        inputNorm: "input_layernorm.weight", postAttentionNorm: "post_attention_layernorm.weight",
        query: "self_attn.q_proj", key: "self_attn.k_proj", value: "self_attn.v_proj", output: "self_attn.o_proj",
        mlp: MLPNames(gate: "mlp.gate_proj", up: "mlp.up_proj", down: "mlp.down_proj"),
        expertLayouts: [fusedExperts, mixtralExperts, qwenExperts],
        sharedExpert: MLPNames(gate: "mlp.shared_expert.gate_proj", up: "mlp.shared_expert.up_proj",
                               down: "mlp.shared_expert.down_proj"),
        sharedExpertGate: "mlp.shared_expert_gate")

    /// llama.cpp's names for these tensors (`llama-arch.cpp`), experts as Mixtral's.
    public static let ggufNames = GGUFNameTable(
        global: [
            "token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight",
        ],
        layer: [
            "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
            "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
            "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
            "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
            "ffn_gate_inp": "block_sparse_moe.gate",
        ],
        expert: ["ffn_gate": "w1", "ffn_down": "w2", "ffn_up": "w3"],
        layerPrefix: layer, expertPrefix: "block_sparse_moe.experts.${expert_index}.")
}
